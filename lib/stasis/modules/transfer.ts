// Module `transfer`: an attended transfer of the other party to a number,
// e.g. "21(\\d+)": {"module": "transfer"}. The target is the pattern's first
// capture, or `data.target` for a code without one. Per-account settings come
// from the code's data; what is not given falls back to the defaults. How the
// target is dialled is a dial route the operator allowed the account, never a
// dial string the account writes.
import Joi from 'joi';
import type { Call } from '../call.js';
import { DEFAULT_ROUTE, NUMBER, NUMBER_RULE } from '../dial.js';
import type { CallModule } from '../features.js';
import type { TransferOptions } from '../transfer.js';

export const TRANSFER_DEFAULTS = {
  ringTimeout: 20,
  mohClass: 'default',
  recallAttempts: 2,
  recallDelay: 5,
} as const;

export interface TransferData {
  target?: string;
  dial_route?: string;
  ring_timeout?: number;
  moh_class?: string;
  recall_attempts?: number;
  recall_delay?: number;
}

/** Validation context: the dial routes the account may use (default: only the default route). */
export interface DataContext {
  dialRoutes?: readonly string[];
}

export const transferDataSchema = Joi.object({
  target: Joi.string().pattern(NUMBER).messages({ 'string.pattern.base': NUMBER_RULE }),
  dial_route: Joi.string().custom((route: string, helpers) => {
    const allowed = (helpers.prefs.context as DataContext | undefined)?.dialRoutes ?? [DEFAULT_ROUTE];
    return allowed.includes(route) ? route : helpers.error('any.only', { routes: allowed.join(', ') });
  }).messages({ 'any.only': 'must be a dial route this account may use: {#routes}' }),
  dial_template: Joi.forbidden().messages({
    'any.unknown': 'is the operator\'s to set: choose one of the account\'s dial routes with dial_route',
  }),
  ring_timeout: Joi.number().integer().min(5).max(300),
  moh_class: Joi.string().pattern(/^[A-Za-z0-9_-]{1,64}$/)
    .messages({ 'string.pattern.base': 'must be a music-on-hold class name (letters, digits, _ and -)' }),
  recall_attempts: Joi.number().integer().min(0).max(5),
  recall_delay: Joi.number().integer().min(1).max(60),
});

/** What a transfer runs with: the code's data over the defaults. */
export function transferOptions(data: TransferData): TransferOptions {
  return {
    route: data.dial_route ?? DEFAULT_ROUTE,
    ringTimeout: data.ring_timeout ?? TRANSFER_DEFAULTS.ringTimeout,
    mohClass: data.moh_class ?? TRANSFER_DEFAULTS.mohClass,
    recallAttempts: data.recall_attempts ?? TRANSFER_DEFAULTS.recallAttempts,
    recallDelay: data.recall_delay ?? TRANSFER_DEFAULTS.recallDelay,
  };
}

export const transferModule: CallModule = {
  name: 'transfer',
  description: 'attended transfer of the other party to the number pressed (or data.target)',
  dataSchema: transferDataSchema,
  async run(call: Call, invocation) {
    const data = invocation.data as TransferData;
    const target = invocation.captures.length > 0 ? invocation.captures[0]! : (data.target ?? '');
    const started = await call.startTransfer(invocation.leg, target, transferOptions(data));
    if (!started.ok) await call.refuse(invocation.leg);
  },
};
