// PUT/POST /v1/api_auth: an account's API key for an expiring token; and the
// middleware that admits a request to /v1/accounts/{ACCOUNT_ID}/... only with
// a valid token of that very account.
import Router from '@koa/router';
import Joi from 'joi';
import type { Context, Next } from 'koa';
import type { AccountStore } from '../store/accounts.js';
import { fieldErrors } from '../validation.js';
import { reply, type ApiState } from './envelope.js';
import { ApiError } from './errors.js';
import type { TokenSigner } from './tokens.js';

const authBody = Joi.object({
  data: Joi.object({ api_key: Joi.string().min(1).max(256).required() }).required(),
}).unknown(true);

export function authRoutes(store: AccountStore, tokens: TokenSigner): Router {
  const router = new Router({ prefix: '/v1' });
  const handler = async (ctx: Context) => {
    const { value, error } = authBody.validate((ctx.state as ApiState).body ?? {}, { abortEarly: false });
    if (error) throw ApiError.validation(fieldErrors(error));
    const account = await store.findByApiKey((value as { data: { api_key: string } }).data.api_key);
    if (!account) throw new ApiError(401, 'invalid credentials', { api_key: { invalid: { message: 'is not a valid API key' } } });
    const { token, expiresAt } = tokens.issue(account.id);
    (ctx.state as ApiState).log.info({ account: account.id }, 'token issued');
    reply(ctx, { account_id: account.id, account_name: account.name, expires_at: expiresAt.toISOString() }, 201, { auth_token: token });
  };
  router.put('/api_auth', handler);
  router.post('/api_auth', handler);
  return router;
}

/** The token from X-Auth-Token (or, as Kazoo allows, ?auth_token=). */
function tokenOf(ctx: Context): string | undefined {
  const header = ctx.get('x-auth-token');
  if (header) return header;
  const q = ctx.query['auth_token'];
  return typeof q === 'string' && q !== '' ? q : undefined;
}

const WHY: Record<string, string> = {
  malformed: 'the auth token is malformed',
  forged: 'the auth token is not valid',
  expired: 'the auth token has expired',
};

export function requireAccount(tokens: TokenSigner) {
  return async (ctx: Context & { params: Record<string, string> }, next: Next): Promise<void> => {
    const token = tokenOf(ctx);
    if (!token) throw new ApiError(401, 'invalid credentials', { 'X-Auth-Token': { required: { message: 'an auth token is required' } } });
    const check = tokens.verify(token);
    if (!check.ok) throw new ApiError(401, 'invalid credentials', { 'X-Auth-Token': { [check.why]: { message: WHY[check.why]! } } });
    // Another account's resources answer exactly like resources that do not exist.
    if (ctx.params['accountId'] !== check.claims.account_id) {
      throw new ApiError(404, 'bad identifier', { id: { not_found: { message: 'no such call or account' } } });
    }
    (ctx.state as ApiState).accountId = check.claims.account_id;
    await next();
  };
}
