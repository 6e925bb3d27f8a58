// Errors the API answers in Kazoo's envelope.
import type { FieldError } from '../validation.js';

export class ApiError extends Error {
  readonly status: number;
  /** Kazoo's {field: {rule: {message}}}. */
  readonly data: Record<string, Record<string, { message: string }>>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    data: Record<string, Record<string, { message: string }>> = {},
    headers: Record<string, string> = {},
  ) {
    // An answer to a bad request, not a fault: collecting a stack trace would
    // be most of what a refused request costs.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'ApiError';
    this.status = status;
    this.data = data;
    this.headers = headers;
  }

  static validation(errors: readonly FieldError[], message = 'validation error'): ApiError {
    const data: Record<string, Record<string, { message: string }>> = {};
    // Kazoo names a field as the client sent it inside the envelope's data: "target", not "data.target".
    for (const e of errors) (data[e.field.startsWith('data.') ? e.field.slice(5) : e.field] ??= {})[e.rule] = { message: e.message };
    return new ApiError(400, message, data);
  }
}

/** One answer for "no such call" and "another account's call", so neither can be told apart. */
export const notFound = (): ApiError => new ApiError(404, 'bad identifier', { id: { not_found: { message: 'no such call or account' } } });
