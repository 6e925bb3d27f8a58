// Module `transfer`: an attended transfer of the other party to a number,
// e.g. "21(\\d+)": {"module": "transfer"}. The target is the pattern's first
// capture, or `data.target` for a code without one. Per-account settings come
// from the code's data; what is not given falls back to the server defaults.
import Joi from 'joi';
import { TARGET, type Call } from '../call.js';
import type { CallModule } from '../features.js';
import type { TransferSettings } from '../transfer.js';

export const TRANSFER_DEFAULTS = {
  ringTimeout: 20,
  mohClass: 'default',
  recallAttempts: 2,
  recallDelay: 5,
} as const;

export interface TransferData {
  target?: string;
  dial_template?: string;
  ring_timeout?: number;
  moh_class?: string;
  recall_attempts?: number;
  recall_delay?: number;
}

export const transferDataSchema = Joi.object<TransferData>({
  target: Joi.string().pattern(TARGET).messages({ 'string.pattern.base': 'must be 1 to 64 of 0-9 A-Z a-z + * # . _ -' }),
  dial_template: Joi.string().max(256).pattern(/^[A-Za-z0-9_]+\/.*\{target\}/)
    .messages({ 'string.pattern.base': 'must be a dial string such as PJSIP/{target} or Local/{target}@internal/n containing {target}' }),
  ring_timeout: Joi.number().integer().min(5).max(300),
  moh_class: Joi.string().pattern(/^[A-Za-z0-9_-]{1,64}$/)
    .messages({ 'string.pattern.base': 'must be a music-on-hold class name (letters, digits, _ and -)' }),
  recall_attempts: Joi.number().integer().min(0).max(5),
  recall_delay: Joi.number().integer().min(1).max(60),
});

/** The settings a transfer runs with: the code's data over the server's defaults. */
export function transferSettings(data: TransferData, defaultDialTemplate: string): TransferSettings {
  return {
    dialTemplate: data.dial_template ?? defaultDialTemplate,
    ringTimeout: data.ring_timeout ?? TRANSFER_DEFAULTS.ringTimeout,
    mohClass: data.moh_class ?? TRANSFER_DEFAULTS.mohClass,
    recallAttempts: data.recall_attempts ?? TRANSFER_DEFAULTS.recallAttempts,
    recallDelay: data.recall_delay ?? TRANSFER_DEFAULTS.recallDelay,
  };
}

export function transferModule(defaultDialTemplate: string): CallModule {
  return {
    name: 'transfer',
    description: 'attended transfer of the other party to the number pressed (or data.target)',
    dataSchema: transferDataSchema,
    async run(call: Call, invocation) {
      const data = invocation.data as TransferData;
      const target = invocation.captures.length > 0 ? invocation.captures[0]! : (data.target ?? '');
      const started = await call.startTransfer(invocation.leg, target, transferSettings(data, defaultDialTemplate));
      if (!started.ok) await call.refuse(invocation.leg);
    },
  };
}
