// Validation failures in one shape for every caller: the command line prints
// them, the API answers them in Kazoo's envelope as {field: {rule: {message}}}.
import type Joi from 'joi';

export interface FieldError {
  /** Dotted path of the offending field, e.g. "patterns.21(\d+).module". */
  field: string;
  /** A short rule name: required, type, minimum, maximum, enum, pattern, unknown, invalid... */
  rule: string;
  message: string;
}

export class ValidationError extends Error {
  constructor(readonly errors: readonly FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    this.name = 'ValidationError';
  }
}

const RULES: Record<string, string> = {
  'any.required': 'required',
  'any.only': 'enum',
  'any.invalid': 'invalid',
  'number.min': 'minimum',
  'number.max': 'maximum',
  'number.integer': 'type',
  'string.min': 'minLength',
  'string.max': 'maxLength',
  'string.empty': 'required',
  'string.pattern.base': 'pattern',
  'object.unknown': 'unknown',
  'object.max': 'maxItems',
};

function ruleOf(type: string): string {
  return RULES[type] ?? (type.endsWith('.base') ? 'type' : type);
}

/** joi's details as field errors, with the path and without joi's quoting of labels. */
export function fieldErrors(error: Joi.ValidationError, prefix = ''): FieldError[] {
  return error.details.map((d) => {
    const field = [prefix, ...d.path.map(String)].filter((p) => p !== '').join('.');
    const message = d.message.replace(/^"[^"]*" /, '');
    return { field: field || '(body)', rule: ruleOf(d.type), message };
  });
}
