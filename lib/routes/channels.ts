// /v1/accounts/{ACCOUNT_ID}/channels: the account's calls, and actions on one.
import Router from '@koa/router';
import Joi from 'joi';
import type { Context } from 'koa';
import { NUMBER, NUMBER_RULE } from '../stasis/dial.js';
import type { ActionResult, CallControl } from '../stasis/control.js';
import { fieldErrors } from '../validation.js';
import { reply, type ApiState } from './envelope.js';
import { ApiError, notFound } from './errors.js';

export type CallService = Pick<CallControl, 'list' | 'get' | 'transfer' | 'cancel' | 'hangup'>;

const actionBody = Joi.object({
  data: Joi.object({
    action: Joi.string().valid('transfer', 'hangup', 'cancel').required(),
    target: Joi.when('action', {
      is: 'transfer',
      then: Joi.string().pattern(NUMBER).required().messages({ 'string.pattern.base': NUMBER_RULE }),
      otherwise: Joi.any().strip(),
    }),
  }).unknown(true).required(),
}).unknown(true);

/** Why an action was refused, as an API answer. */
function refusal(error: Exclude<ActionResult<unknown>, { ok: true }>['error']): ApiError {
  switch (error) {
    case 'not_found':
      return notFound();
    case 'unavailable':
      return new ApiError(503, 'not connected to Asterisk at the moment; try again shortly', {}, { 'Retry-After': '2' });
    case 'not_bridged':
      return new ApiError(409, 'Channel is not bridged', { id: { state: { message: 'the call is not connected to another party' } } });
    case 'in_progress':
      return new ApiError(409, 'a transfer is already in progress', { id: { state: { message: 'cancel it or wait for it to end' } } });
    case 'no_transfer':
      return new ApiError(409, 'no transfer in progress', { id: { state: { message: 'there is no transfer to cancel' } } });
    case 'not_enabled':
      return new ApiError(409, 'transfer is not enabled for this account', { action: { enum: { message: 'enable the transfer metaflow first' } } });
    case 'empty_target':
    case 'invalid_target':
      return ApiError.validation([{ field: 'data.target', rule: 'pattern', message: 'is not a number konami can dial' }]);
    case 'own_number':
      return ApiError.validation([{ field: 'data.target', rule: 'invalid', message: "is the transferor's own number" }]);
    case 'transferee_number':
      return ApiError.validation([{ field: 'data.target', rule: 'invalid', message: 'is the number of the party being transferred' }]);
    case 'call_transfer_limit':
      return new ApiError(429, 'this call has started as many transfers as one call may', {
        action: { maximum: { message: 'no more transfers on this call' } },
      });
    case 'account_transfer_rate':
      return new ApiError(429, 'the account is starting transfers faster than it may', {
        action: { rate: { message: 'retry in a few seconds' } },
      });
    case 'route_not_allowed':
      return new ApiError(409, 'the dial route of the transfer code is not available to this account', {
        dial_route: { enum: { message: 'ask the operator, or choose another route in the transfer code' } },
      });
  }
}

export function channelRoutes(calls: CallService): Router {
  const router = new Router();
  const account = (ctx: Context) => (ctx.state as ApiState).accountId!;

  router.get('/channels', (ctx) => {
    reply(ctx, calls.list(account(ctx)));
  });

  router.get('/channels/:callId', (ctx) => {
    const view = calls.get(account(ctx), ctx.params['callId']!);
    if (!view) throw notFound();
    reply(ctx, view);
  });

  router.post('/channels/:callId', async (ctx) => {
    const { value, error } = actionBody.validate((ctx.state as ApiState).body ?? {}, { abortEarly: false });
    if (error) throw ApiError.validation(fieldErrors(error));
    const { action, target } = (value as { data: { action: 'transfer' | 'hangup' | 'cancel'; target?: string } }).data;
    const callId = ctx.params['callId']!;
    const log = (ctx.state as ApiState).log.child({ call_id: callId, action });
    const result = action === 'transfer'
      ? await calls.transfer(account(ctx), callId, target!)
      : action === 'cancel'
        ? await calls.cancel(account(ctx), callId)
        : await calls.hangup(account(ctx), callId);
    if (!result.ok) {
      log.info({ refused: result.error }, 'channel action refused');
      throw refusal(result.error);
    }
    log.info('channel action accepted');
    reply(ctx, action === 'hangup' ? {} : result.value, 202);
  });

  return router;
}
