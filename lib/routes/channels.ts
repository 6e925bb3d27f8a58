// /v1/accounts/{ACCOUNT_ID}/channels and /users/{USER_ID}/channels: calls, and Kazoo's actions on one.
import Router from '@koa/router';
import Joi from 'joi';
import type { Context } from 'koa';
import type { ActionResult, CallControl, Scope } from '../stasis/control.js';
import type { AccountStore } from '../store/accounts.js';
import { scopeOf } from './scope.js';
import { transferRequestSchema, type DataContext, type TransferData } from '../stasis/modules/transfer.js';
import { fieldErrors } from '../validation.js';
import { reply, type ApiState } from './envelope.js';
import { ApiError, notFound } from './errors.js';
import { askPeers, forwardToOwner, mayForward, peersUnavailable, type Peers } from './forward.js';

export type CallService = Pick<CallControl, 'list' | 'get' | 'transfer' | 'cancel' | 'hangup' | 'break'>;

/** The actions konami takes, each with what it accepts beside `action` (anything else is refused by name). */
const ACTIONS = {
  transfer: transferRequestSchema.messages({ 'any.required': 'No target destination specified' }),
  cancel: Joi.object({}),
  hangup: Joi.object({}),
  break: Joi.object({}),
} as const;
type Action = keyof typeof ACTIONS;
/** Kazoo's other channel actions: named in the refusal so a client knows it is not a typo. */
const KAZOO_ONLY = ['callflow', 'intercept', 'hold', 'unhold', 'move', 'eavesdrop', 'metaflow'];

/** The request's action and its fields; errors keyed by the field as sent (Kazoo's way). */
function actionOf(body: unknown, context: DataContext): { action: Action; fields: Record<string, unknown> } {
  const data = (body as { data?: unknown } | undefined)?.data;
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw ApiError.validation([{ field: 'data', rule: 'required', message: 'is required: {"data": {"action": ...}}' }]);
  }
  const { action, ...fields } = data as Record<string, unknown>;
  const supported = Object.keys(ACTIONS).join(', ');
  if (typeof action !== 'string' || !Object.hasOwn(ACTIONS, action)) {
    const message = typeof action !== 'string'
      ? `is required: one of ${supported}`
      : KAZOO_ONLY.includes(action)
        ? `"${action}" is a Kazoo action konami does not take; konami takes ${supported}`
        : `must be one of ${supported}`;
    throw ApiError.validation([{ field: 'action', rule: typeof action === 'string' ? 'enum' : 'required', message }]);
  }
  const { value, error } = ACTIONS[action as Action].validate(fields, { abortEarly: false, context });
  if (error) throw ApiError.validation(fieldErrors(error));
  return { action: action as Action, fields: value as Record<string, unknown> };
}

/** Why an action was refused, as an API answer. */
function refusal(error: Exclude<ActionResult<unknown>, { ok: true }>['error']): ApiError {
  switch (error) {
    case 'not_found':
      return notFound();
    case 'unavailable':
      return new ApiError(503, 'not connected to Asterisk at the moment; try again shortly', {}, { 'Retry-After': '2' });
    case 'not_bridged':
      // Kazoo's own answer, which its clients look for.
      return ApiError.validation([{ field: 'other_leg_call_id', rule: 'required', message: 'Channel is not bridged' }]);
    case 'in_progress':
      return new ApiError(409, 'a transfer is already in progress', { id: { state: { message: 'cancel it or wait for it to end' } } });
    case 'not_cancellable':
      return new ApiError(409, 'the transfer cannot be cancelled now', { id: { state: { message: 'the transferor is being called back' } } });
    case 'no_transfer':
      return new ApiError(409, 'no transfer in progress', { id: { state: { message: 'there is no transfer to cancel' } } });
    case 'empty_target':
    case 'invalid_target':
      return ApiError.validation([{ field: 'target', rule: 'pattern', message: 'is not a number konami can dial' }]);
    case 'own_number':
      return ApiError.validation([{ field: 'target', rule: 'invalid', message: "is the transferor's own number" }]);
    case 'transferee_number':
      return ApiError.validation([{ field: 'target', rule: 'invalid', message: 'is the number of the party being transferred' }]);
    case 'call_transfer_limit':
      return new ApiError(429, 'this call has started as many transfers as one call may', {
        action: { maximum: { message: 'no more transfers on this call' } },
      });
    case 'account_transfer_rate':
      return new ApiError(429, 'the account is starting transfers faster than it may', {
        action: { rate: { message: 'retry in a few seconds' } },
      });
    case 'route_not_allowed':
      return new ApiError(409, 'the dial route of the transfer is not available to this account', {
        dial_route: { enum: { message: 'ask the operator, or choose another route in the transfer code' } },
      });
  }
}

/**
 * The account's channels, and a user's: /channels answers an account's token
 * with all its calls and a user's token with the user's own; /users/{U}/channels
 * answers with user U's calls (to U's own token, or the account's).
 */
export function channelRoutes(calls: CallService, accounts: Pick<AccountStore, 'cached'>, mohClasses: readonly string[], peers?: Peers): Router {
  const router = new Router();

  const scope = (ctx: Context): Scope => {
    const found = scopeOf(ctx, accounts);
    if (!found) throw notFound();
    return found;
  };

  for (const base of ['/channels', '/users/:userId/channels']) {
    // Distributed mode: the calls of every Asterisk, whichever instance drives it.
    router.get(base, async (ctx) => {
      const here = calls.list(scope(ctx));
      if (!mayForward(ctx, peers)) return reply(ctx, here);
      const { answers, failed } = await askPeers(ctx, peers);
      // A list without the calls of an instance that did not answer would be wrong, not short.
      if (failed || answers.some((a) => a.status !== 200)) throw peersUnavailable();
      const elsewhere = answers.flatMap((a) => (Array.isArray((a.body as { data?: unknown }).data) ? (a.body as { data: unknown[] }).data : []));
      reply(ctx, [...here, ...elsewhere]);
    });

    router.get(`${base}/:callId`, async (ctx) => {
      const view = calls.get(scope(ctx), ctx.params['callId']!);
      if (view) return reply(ctx, view);
      if (mayForward(ctx, peers) && (await forwardToOwner(ctx, peers))) return;
      throw notFound();
    });

    router.post(`${base}/:callId`, async (ctx) => {
      const within = scope(ctx);
      const { action, fields } = actionOf((ctx.state as ApiState).body, { mohClasses });
      const callId = ctx.params['callId']!;
      const log = (ctx.state as ApiState).log.child({ call_id: callId, action });
      const result = await run(calls, within, callId, action, fields);
      // Not a call of this instance: the instance that has it answers, as it would the client.
      if (!result.ok && result.error === 'not_found' && mayForward(ctx, peers) && (await forwardToOwner(ctx, peers))) return;
      if (!result.ok) {
        log.info({ refused: result.error }, 'channel action refused');
        throw refusal(result.error);
      }
      log.info('channel action accepted');
      reply(ctx, result.value ?? {}, 202);
    });
  }

  return router;
}

function run(calls: CallService, scope: Scope, callId: string, action: Action, fields: Record<string, unknown>): Promise<ActionResult<unknown>> {
  switch (action) {
    case 'transfer':
      return calls.transfer(scope, callId, fields as unknown as TransferData & { target: string });
    case 'cancel':
      return calls.cancel(scope, callId);
    case 'hangup':
      return calls.hangup(scope, callId);
    case 'break':
      return calls.break(scope, callId);
  }
}
