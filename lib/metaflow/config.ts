// Validation of an account's metaflows: Kazoo's shape, with defaults, checked
// field by field. Every pattern is compiled by the linear-time DTMF engine, so
// a saved pattern can neither fail to compile mid-call nor stall a call.
import Joi from 'joi';
import { ValidationError, fieldErrors, type FieldError } from '../validation.js';
import { DtmfRegex, RegexSyntaxError } from './dtmf-regex.js';
import type { ModuleRegistry } from './modules.js';
import type { MetaflowConfig } from './types.js';

export const DEFAULT_DIGIT_TIMEOUT_MS = 2000;
export const MIN_DIGIT_TIMEOUT_MS = 300;
export const MAX_DIGIT_TIMEOUT_MS = 10_000;
/** Longest code (digits after the binding digit). */
export const MAX_CODE_DIGITS = 32;
const MAX_CODES = 100;

const action = Joi.object({
  module: Joi.string().min(1).max(64).required(),
  data: Joi.object().unknown(true).default({}),
});

const schema = Joi.object({
  binding_digit: Joi.string().pattern(/^[0-9*A-D]$/).default('*')
    .messages({ 'string.pattern.base': 'must be one DTMF key: 0-9, *, A-D (# ends codes and cannot arm them)' }),
  digit_timeout: Joi.number().integer().min(MIN_DIGIT_TIMEOUT_MS).max(MAX_DIGIT_TIMEOUT_MS).default(DEFAULT_DIGIT_TIMEOUT_MS),
  listen_on: Joi.string().valid('a', 'b', 'both').default('both'),
  numbers: Joi.object().pattern(Joi.string().pattern(new RegExp(`^[0-9*A-D]{1,${MAX_CODE_DIGITS}}$`)), action)
    .max(MAX_CODES).default({})
    .messages({ 'object.unknown': `must be 1 to ${MAX_CODE_DIGITS} DTMF keys (0-9, *, A-D)` }),
  patterns: Joi.object().pattern(Joi.string().min(1).max(256), action).max(MAX_CODES).default({}),
}).required();

/**
 * Checks raw metaflows (parsed JSON) and returns them with defaults applied,
 * or throws a ValidationError naming every offending field.
 */
export function validateMetaflows(raw: unknown, modules: Pick<ModuleRegistry<unknown>, 'get' | 'names'>): MetaflowConfig {
  const { value, error } = schema.validate(raw, { abortEarly: false, convert: false });
  const errors: FieldError[] = error ? fieldErrors(error) : [];
  // The code tables are checked even when other fields are wrong, so one
  // answer names every problem.
  const config = value as Partial<MetaflowConfig> | undefined;
  for (const table of ['numbers', 'patterns'] as const) {
    const entries = config?.[table];
    if (!entries || typeof entries !== 'object') continue;
    for (const [key, act] of Object.entries(entries)) {
      const at = `${table}.${key}`;
      if (table === 'patterns') {
        try {
          new DtmfRegex(key);
        } catch (err) {
          if (!(err instanceof RegexSyntaxError)) throw err;
          errors.push({ field: at, rule: 'pattern', message: `is not a valid pattern: ${err.message}` });
        }
      }
      if (!act || typeof act !== 'object' || typeof act.module !== 'string') continue;
      const module = modules.get(act.module);
      if (!module) {
        errors.push({ field: `${at}.module`, rule: 'enum', message: `unknown module "${act.module}"; known: ${modules.names().join(', ')}` });
        continue;
      }
      if (module.dataSchema) {
        const r = module.dataSchema.validate(act.data ?? {}, { abortEarly: false, convert: false });
        if (r.error) errors.push(...fieldErrors(r.error, `${at}.data`));
        else act.data = r.value as Record<string, unknown>;
      }
    }
  }
  if (errors.length > 0) throw new ValidationError(errors);
  return config as MetaflowConfig;
}
