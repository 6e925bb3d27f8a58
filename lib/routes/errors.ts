// Errors the API answers in Kazoo's envelope.
import type { FieldError } from '../validation.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Kazoo's {field: {rule: {message}}}. */
    readonly data: Record<string, Record<string, { message: string }>> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  static validation(errors: readonly FieldError[], message = 'validation error'): ApiError {
    const data: Record<string, Record<string, { message: string }>> = {};
    for (const e of errors) (data[e.field] ??= {})[e.rule] = { message: e.message };
    return new ApiError(400, message, data);
  }
}

/** One answer for "no such call" and "another account's call", so neither can be told apart. */
export const notFound = (): ApiError => new ApiError(404, 'bad identifier', { id: { not_found: { message: 'no such call or account' } } });
