// Validation of an account's metaflows: Kazoo's shape, with defaults, checked
// field by field. Every pattern is compiled by the linear-time DTMF engine, so
// a saved pattern cannot fail to compile mid-call; and every pattern, and the
// account's patterns together, must fit a cost budget, so no account's codes
// can make a digit expensive for the calls of every other account.
import Joi from 'joi';
import { ValidationError, fieldErrors, type FieldError } from '../validation.js';
import { DtmfRegex, RegexCostError, RegexSyntaxError } from './dtmf-regex.js';
import type { ModuleRegistry } from './modules.js';
import type { MetaflowConfig } from './types.js';

export const DEFAULT_DIGIT_TIMEOUT_MS = 2000;
export const MIN_DIGIT_TIMEOUT_MS = 300;
export const MAX_DIGIT_TIMEOUT_MS = 10_000;
/** Longest code (digits after the binding digit). */
export const MAX_CODE_DIGITS = 32;
const MAX_CODES = 100;
/**
 * NFA steps one digit may cost an account: the sizes of its patterns added up
 * (each at most MAX_PROGRAM). `npm run bench:patterns` measures the worst
 * metaflows this admits.
 */
export const PATTERN_BUDGET = 8192;

const action = Joi.object({
  module: Joi.string().min(1).max(64).required(),
  data: Joi.object().unknown(true).default({}),
  // Kazoo's nodes may carry children; konami runs one module per code, so only an empty one is taken (and not kept).
  children: Joi.object().max(0).strip()
    .messages({ 'object.max': 'are not run by konami (one module per code): leave them out' }),
});

const schema = Joi.object({
  binding_digit: Joi.string().pattern(/^[0-9*A-D]$/).default('*')
    .messages({ 'string.pattern.base': 'must be one DTMF key: 0-9, *, A-D (# ends codes and cannot arm them)' }),
  digit_timeout: Joi.number().integer().min(MIN_DIGIT_TIMEOUT_MS).max(MAX_DIGIT_TIMEOUT_MS).default(DEFAULT_DIGIT_TIMEOUT_MS),
  listen_on: Joi.string().valid('a', 'b', 'both').default('both')
    .messages({ 'any.only': 'must be both, a (self: the caller) or b (peer: the called party)' }),
  numbers: Joi.object().pattern(Joi.string().pattern(new RegExp(`^[0-9*A-D]{1,${MAX_CODE_DIGITS}}$`)), action)
    .max(MAX_CODES).default({})
    .messages({ 'object.unknown': `must be 1 to ${MAX_CODE_DIGITS} DTMF keys (0-9, *, A-D)` }),
  patterns: Joi.object().pattern(Joi.string().min(1).max(256), action).max(MAX_CODES).default({}),
}).required();

/**
 * Checks raw metaflows (parsed JSON) and returns them with defaults applied,
 * or throws a ValidationError naming every offending field. `context` is what
 * the modules' data schemas may depend on (the account's dial routes).
 */
export function validateMetaflows(
  given: unknown, modules: Pick<ModuleRegistry<unknown>, 'get' | 'names'>, context: Record<string, unknown> = {},
): MetaflowConfig {
  const { raw, errors: spelling } = canonical(given);
  // Counted first: a table over the limit is refused before any of its entries costs anything.
  const overLimit = tablesOverLimit(raw);
  if (overLimit.length > 0) throw new ValidationError(overLimit);
  const { value, error } = schema.validate(raw, { abortEarly: false, convert: false });
  const errors: FieldError[] = [...spelling, ...(error ? fieldErrors(error) : [])];
  // The code tables are checked even when other fields are wrong, so one
  // answer names every problem.
  const config = value as Partial<MetaflowConfig> | undefined;
  let cost = 0;
  for (const table of ['numbers', 'patterns'] as const) {
    const entries = config?.[table];
    if (!entries || typeof entries !== 'object') continue;
    for (const [key, act] of Object.entries(entries)) {
      const at = `${table}.${key}`;
      // Past the budget, no more pattern is compiled: the answer is no whatever they cost.
      if (table === 'patterns' && cost <= PATTERN_BUDGET) {
        const problem = patternProblem(key);
        if (typeof problem === 'number') cost += problem;
        else errors.push({ field: at, ...problem });
      }
      if (!act || typeof act !== 'object' || typeof act.module !== 'string') continue;
      const module = modules.get(act.module);
      if (!module) {
        errors.push({ field: `${at}.module`, rule: 'enum', message: `unknown module "${act.module}"; known: ${modules.names().join(', ')}` });
        continue;
      }
      const r = module.dataSchema.validate(act.data ?? {}, { abortEarly: false, convert: false, context });
      if (r.error) errors.push(...fieldErrors(r.error, `${at}.data`));
      else act.data = r.value as Record<string, unknown>;
    }
  }
  if (cost > PATTERN_BUDGET) {
    errors.push({
      field: 'patterns', rule: 'cost',
      message: `together cost more than the ${PATTERN_BUDGET} steps per digit an account may use: use fewer or simpler patterns`,
    });
  }
  if (errors.length > 0) throw new ValidationError(errors);
  return config as MetaflowConfig;
}

/** Kazoo's and the specification's other spellings of a field, and the field they are stored as. */
const SPELLINGS: Record<string, string> = { binding_key: 'binding_digit', digit_timeout_ms: 'digit_timeout' };
/** Kazoo's listen_on values: self is the leg the call came in on (the caller), peer the other. */
const LISTEN_ON: Record<string, string> = { self: 'a', peer: 'b', ab: 'both' };

/**
 * The metaflows in their one stored spelling: `{"metaflows": {...}}` (as a
 * Kazoo document holds them) is unwrapped, Kazoo's and the specification's
 * field names and listen_on values become konami's. Giving one field under
 * two names is refused rather than guessed.
 */
function canonical(given: unknown): { raw: unknown; errors: FieldError[] } {
  if (!isObject(given)) return { raw: given, errors: [] };
  const keys = Object.keys(given);
  const inner = keys.length === 1 && keys[0] === 'metaflows' ? given['metaflows'] : given;
  if (!isObject(inner)) return { raw: inner, errors: [] };
  const raw: Record<string, unknown> = { ...inner };
  const errors: FieldError[] = [];
  for (const [alias, name] of Object.entries(SPELLINGS)) {
    if (!Object.hasOwn(raw, alias)) continue;
    if (Object.hasOwn(raw, name)) errors.push({ field: alias, rule: 'unique', message: `is ${name} under another name: give one of them` });
    else raw[name] = raw[alias];
    delete raw[alias];
  }
  const listen = raw['listen_on'];
  if (typeof listen === 'string' && Object.hasOwn(LISTEN_ON, listen)) raw['listen_on'] = LISTEN_ON[listen];
  return { raw, errors };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tablesOverLimit(raw: unknown): FieldError[] {
  if (!raw || typeof raw !== 'object') return [];
  const errors: FieldError[] = [];
  for (const table of ['numbers', 'patterns'] as const) {
    const entries = (raw as Record<string, unknown>)[table];
    if (entries && typeof entries === 'object' && Object.keys(entries).length > MAX_CODES) {
      errors.push({ field: table, rule: 'maxItems', message: `must have at most ${MAX_CODES} codes` });
    }
  }
  return errors;
}

/** The pattern's cost (steps per digit), or why it cannot be saved. */
function patternProblem(key: string): number | Omit<FieldError, 'field'> {
  let re: DtmfRegex;
  try {
    re = new DtmfRegex(key);
  } catch (err) {
    if (err instanceof RegexCostError) return { rule: 'cost', message: err.message };
    if (err instanceof RegexSyntaxError) return { rule: 'pattern', message: `is not a valid pattern: ${err.message}` };
    throw err;
  }
  if (re.minLength > MAX_CODE_DIGITS) {
    return { rule: 'cost', message: `can never match: it needs at least ${re.minLength} digits and a code has at most ${MAX_CODE_DIGITS}` };
  }
  return re.size;
}

