// Module `resume`: cancels the transfer in progress (the target is hung up at
// once, the transferor is back with the transferee). Without a transfer in
// progress, or pressed by anyone but the transferor, it does nothing.
import Joi from 'joi';
import type { CallModule } from '../features.js';

export const resumeModule: CallModule = {
  name: 'resume',
  description: 'cancel the transfer in progress and return to the held party',
  dataSchema: Joi.object({}),
  async run(call, invocation) {
    await call.cancelTransfer(invocation.leg);
  },
};
