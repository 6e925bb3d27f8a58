// Module `transfer`: the one place a request for a transfer becomes one,
// whether it comes from a code such as "21(\\d+)": {"module": "transfer"},
// from the API, or from a blind transfer code. The target is the pattern's
// first capture, or `data.target` for a code without one. What is not given
// falls back to the defaults below, so an account with no transfer code can
// still transfer through the API. How the target is dialled is a dial route
// the operator allowed the account, never a dial string the account writes.
import Joi from 'joi';
import type { LegRole } from '../../metaflow/types.js';
import { DEFAULT_ROUTE, NUMBER, NUMBER_RULE } from '../dial.js';
import type { CallModule, CallPort, TransferStart } from '../features.js';
import { DEFAULT_MOH_CLASSES, type TransferOptions } from '../transfer.js';

export { DEFAULT_MOH_CLASSES } from '../transfer.js';

/** What a transfer runs with when neither the code's data nor the request says (Kazoo's where it has one). */
export const TRANSFER_DEFAULTS = {
  ringTimeout: 20,
  moh: 'default',
  recallAttempts: 2,
  recallDelay: 5,
  takebackDtmf: '*1',
  ringback: 'ring',
  type: 'attended',
} as const;

export type TransferType = 'attended' | 'blind';

/** A transfer code's data, in its one stored spelling. */
export interface TransferData {
  target?: string;
  dial_route?: string;
  ring_timeout?: number;
  moh?: string;
  recall_attempts?: number;
  recall_delay?: number;
  takeback_dtmf?: string;
  ringback?: string;
  transfer_type?: TransferType;
}

/**
 * Validation context: what the operator lets the account name. Dial routes
 * (default: only the default route) and music-on-hold classes (MOH_CLASSES;
 * default: only "default"), since Asterisk's classes are every account's.
 */
export interface DataContext {
  dialRoutes?: readonly string[];
  mohClasses?: readonly string[];
}


/** Asterisk's indications a ringback may name. */
const TONES = ['ring', 'dial', 'busy', 'congestion', 'callwaiting', 'dialrecall', 'record', 'info', 'stutter'];
/** Kazoo's ringback tone: %(on ms,off ms,frequency[,frequency]). */
const KAZOO_TONE = /^%\((\d{1,5}),(\d{1,5}),(\d{1,4})(?:,(\d{1,4}))?\)$/;
const RINGBACK_RULE = `must be a tone (${TONES.join(', ')}) or %(on ms,off ms,Hz[,Hz]) as in Kazoo`;

/** The media URI a ringback stands for (it was validated). */
export function ringbackMedia(ringback: string): string {
  const m = KAZOO_TONE.exec(ringback);
  if (!m) return `tone:${ringback}`;
  const [, on, off, f1, f2] = m;
  return `tone:${f2 ? `${f1}+${f2}` : f1}/${on},0/${off}`;
}

const fields = {
  target: Joi.string().pattern(NUMBER).messages({ 'string.pattern.base': NUMBER_RULE }),
  moh: Joi.string().custom((moh: string, helpers) => {
    const allowed = (helpers.prefs.context as DataContext | undefined)?.mohClasses ?? DEFAULT_MOH_CLASSES;
    return allowed.includes(moh) ? moh : helpers.error('any.only', { classes: allowed.join(', ') });
  }).messages({ 'any.only': 'must be a music-on-hold class the operator offers: {#classes}' }),
  takeback_dtmf: Joi.string().pattern(/^[0-9*#A-Da-d]{1,8}$/)
    .messages({ 'string.pattern.base': 'must be 1 to 8 DTMF keys (0-9, *, #, A-D)' }),
  ringback: Joi.string().custom((value: string, helpers) => {
    const m = KAZOO_TONE.exec(value);
    if (TONES.includes(value)) return value;
    if (m && [m[1], m[2]].every((ms) => Number(ms) <= 10_000) && [m[3], m[4]].every((hz) => hz === undefined || Number(hz) <= 4000)) return value;
    return helpers.error('string.pattern.base');
  }).messages({ 'string.pattern.base': RINGBACK_RULE }),
  transfer_type: Joi.string().valid('attended', 'blind'),
};

/** Kazoo's other spellings, stored as the canonical one. */
const aliases = (schema: Joi.ObjectSchema): Joi.ObjectSchema => schema
  .rename('moh_class', 'moh', { ignoreUndefined: true })
  .rename('transfer-type', 'transfer_type', { ignoreUndefined: true })
  .rename('Transfer-Type', 'transfer_type', { ignoreUndefined: true });

/** A transfer code's data. */
export const transferDataSchema = aliases(Joi.object({
  ...fields,
  dial_route: Joi.string().custom((route: string, helpers) => {
    const allowed = (helpers.prefs.context as DataContext | undefined)?.dialRoutes ?? [DEFAULT_ROUTE];
    return allowed.includes(route) ? route : helpers.error('any.only', { routes: allowed.join(', ') });
  }).messages({ 'any.only': 'must be a dial route this account may use: {#routes}' }),
  dial_template: Joi.forbidden().messages({
    'any.unknown': 'is the operator\'s to set: choose one of the account\'s dial routes with dial_route',
  }),
  ring_timeout: Joi.number().integer().min(5).max(300),
  recall_attempts: Joi.number().integer().min(0).max(5),
  recall_delay: Joi.number().integer().min(1).max(60),
}));

/** What an API transfer request may choose (Kazoo's channel action fields); the rest is the account's. */
export const transferRequestSchema = aliases(Joi.object({ ...fields, target: fields.target.required() }));

/** What a transfer runs with: the data over the defaults. */
export function transferOptions(data: TransferData): TransferOptions {
  return {
    route: data.dial_route ?? DEFAULT_ROUTE,
    ringTimeout: data.ring_timeout ?? TRANSFER_DEFAULTS.ringTimeout,
    // Accounts saved before `moh` was the stored spelling say moh_class.
    mohClass: data.moh ?? (data as { moh_class?: string }).moh_class ?? TRANSFER_DEFAULTS.moh,
    recallAttempts: data.recall_attempts ?? TRANSFER_DEFAULTS.recallAttempts,
    recallDelay: data.recall_delay ?? TRANSFER_DEFAULTS.recallDelay,
    takebackDtmf: (data.takeback_dtmf ?? TRANSFER_DEFAULTS.takebackDtmf).toUpperCase(),
    ringback: ringbackMedia(data.ringback ?? TRANSFER_DEFAULTS.ringback),
    type: data.transfer_type ?? TRANSFER_DEFAULTS.type,
  };
}

/** Asks the call for a transfer of the party other than `by` to `target`, with `data` over the defaults. */
export function requestTransfer(call: CallPort, by: LegRole, target: string, data: TransferData): Promise<TransferStart> {
  return call.startTransfer({ by, target, options: transferOptions(data) });
}

export const transferModule: CallModule = {
  name: 'transfer',
  description: 'transfer of the other party to the number pressed (or data.target): attended, or blind with transfer_type',
  dataSchema: transferDataSchema,
  async run(call, invocation) {
    const data = invocation.data as TransferData;
    const target = invocation.captures.length > 0 ? invocation.captures[0]! : (data.target ?? '');
    const started = await requestTransfer(call, invocation.leg, target, data);
    if (!started.ok) await call.refuse(invocation.leg);
  },
};
