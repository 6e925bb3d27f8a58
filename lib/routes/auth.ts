// Who is asking. PUT/POST /v1/api_auth exchanges an account's API key for an
// expiring token; GET/DELETE /v1/token_auth read and revoke (sign out) the
// token presented. identify() reads the token of every request once (the rate
// limiter keys on the account it proves); requireAccount() admits a request
// to /v1/accounts/{ACCOUNT_ID}/... only with a live token of that very
// account: signed here, not expired, its key still the account's, not revoked.
import Router from '@koa/router';
import Joi from 'joi';
import type { Context, Next } from 'koa';
import type { Account, AccountStore } from '../store/accounts.js';
import { fieldErrors } from '../validation.js';
import { reply, type ApiState } from './envelope.js';
import { ApiError, notFound } from './errors.js';
import { kazooCredentials, withNewKid, type CredentialsMethod, type UserKeys } from '../store/users.js';
import type { RateLimiter } from '../limits.js';
import type { TokenClaims, TokenProblem, TokenSigner } from './tokens.js';

const authBody = Joi.object({
  data: Joi.object({ api_key: Joi.string().min(1).max(256).required() }).required(),
}).unknown(true);

/**
 * Kazoo's user_auth: the account (account_id, or account_name when it names
 * one account) and either Kazoo's credentials, md5("username:password") in
 * hex, or the username and password themselves.
 */
const userAuthBody = Joi.object({
  data: Joi.object({
    account_id: Joi.string().max(64),
    account_name: Joi.string().max(128),
    credentials: Joi.string().pattern(/^[0-9a-fA-F]{32}([0-9a-fA-F]{8})?$/).messages({ 'string.pattern.base': 'must be md5 (or, with method sha, sha1) of "username:password" in hex' }),
    method: Joi.string().valid('md5', 'sha'),
    username: Joi.string().max(64),
    password: Joi.string().max(128),
  }).xor('account_id', 'account_name').xor('credentials', 'username').and('username', 'password').required(),
}).unknown(true);


const WHY: Record<TokenProblem, string> = {
  malformed: 'the auth token is malformed',
  forged: 'the auth token is not valid',
  expired: 'the auth token has expired',
  revoked: 'the auth token was revoked (signed out, API key rotated or account removed)',
};

/**
 * The token of the request: the X-Auth-Token header, or, for reads only, the
 * auth_token query parameter as Kazoo's clients send it where they cannot set
 * a header (links, event streams). Neither is ever logged.
 */
function tokenOf(ctx: Context): string | undefined {
  const header = ctx.get('x-auth-token');
  if (header) return header;
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return undefined;
  const q = ctx.query['auth_token'];
  return typeof q === 'string' && q !== '' ? q : undefined;
}

/** Signed-out token ids per account version, so a check is one set lookup. */
const revokedSets = new WeakMap<Account, ReadonlySet<string>>();

function revokedOf(account: Account): ReadonlySet<string> {
  let set = revokedSets.get(account);
  if (!set) {
    set = new Set((account.revoked_tokens ?? []).map((r) => r.jti));
    revokedSets.set(account, set);
  }
  return set;
}

/**
 * The token still speaks for its account (and user): the account exists, the
 * key (or the user's password) is still the one it was issued for, it was not
 * signed out.
 */
export function stillValid(account: Account | undefined, claims: TokenClaims): boolean {
  if (!account || account.id !== claims.account_id) return false;
  const current = claims.user_id === undefined
    ? account.api_keys.some((k) => k.id === claims.kid)
    : (account.users ?? []).some((u) => u.id === claims.user_id && u.kid === claims.kid);
  if (!current) return false;
  if (account.tokens_not_before !== undefined && claims.iat < account.tokens_not_before) return false;
  return !revokedOf(account).has(claims.jti);
}

/** Reads and checks the request's token, if any, without refusing anything: the routes decide. */
export function identify(tokens: TokenSigner, accounts: Pick<AccountStore, 'cached'>) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const token = tokenOf(ctx);
    if (token !== undefined) {
      let check = tokens.verify(token);
      if (check.ok && !stillValid(accounts.cached(check.claims.account_id), check.claims)) check = { ok: false, why: 'revoked' };
      (ctx.state as ApiState).auth = check;
    }
    await next();
  };
}

/** The claims of the request's live token, or a 401 saying what is wrong with it. */
function claimsOf(ctx: Context): TokenClaims {
  const auth = (ctx.state as ApiState).auth;
  if (!auth) throw new ApiError(401, 'invalid credentials', { 'X-Auth-Token': { required: { message: 'an auth token is required' } } });
  if (!auth.ok) throw new ApiError(401, 'invalid credentials', { 'X-Auth-Token': { [auth.why]: { message: WHY[auth.why] } } });
  return auth.claims;
}

/**
 * Failed user_auth attempts an account takes: bursts of 20, then one every
 * 2 s (so at most 1,800 guesses an hour at its users' passwords, from any
 * number of addresses); past that, 429 until the bucket refills.
 */
export const LOGIN_FAILURES = { perSecond: 0.5, burst: 20 } as const;

export function authRoutes(store: AccountStore, tokens: TokenSigner, users: UserKeys, failures: Pick<RateLimiter, 'take' | 'peek'>): Router {
  const router = new Router({ prefix: '/v1' });
  const handler = async (ctx: Context) => {
    const { value, error } = authBody.validate((ctx.state as ApiState).body ?? {}, { abortEarly: false });
    if (error) throw ApiError.validation(fieldErrors(error));
    const found = await store.findByApiKey((value as { data: { api_key: string } }).data.api_key);
    if (!found) throw new ApiError(401, 'invalid credentials', { api_key: { invalid: { message: 'is not a valid API key' } } });
    const { account, keyId } = found;
    const { token, expiresAt } = tokens.issue(account.id, keyId);
    (ctx.state as ApiState).log.info({ account: account.id, key_id: keyId }, 'token issued');
    reply(ctx, { account_id: account.id, account_name: account.name, expires_at: expiresAt.toISOString() }, 201, { auth_token: token });
  };
  router.put('/api_auth', handler);
  router.post('/api_auth', handler);

  const userAuth = async (ctx: Context) => {
    const { value, error } = userAuthBody.validate((ctx.state as ApiState).body ?? {}, { abortEarly: false });
    if (error) throw ApiError.validation(fieldErrors(error));
    const given = (value as { data: { account_id?: string; account_name?: string; credentials?: string; method?: CredentialsMethod; username?: string; password?: string } }).data;
    const method = given.method ?? 'md5';
    const account = given.account_id !== undefined
      ? await store.get(given.account_id)
      : onlyOne(store.named(given.account_name!));
    // An account whose users' passwords are being guessed takes no more guesses for a while.
    const wait = account ? failures.peek(account.id) : 0;
    if (wait > 0) throw new ApiError(429, 'too many failed sign-ins for this account', { credentials: { rate: { message: `retry in ${Math.ceil(wait / 1000)} s` } } }, { 'Retry-After': String(Math.ceil(wait / 1000)) });
    const credentials = given.credentials ?? kazooCredentials(given.username!, given.password!, method);
    const user = account ? users.find(account.users ?? [], credentials, method) : undefined;
    if (account && !user) failures.take(account.id);
    // No account, an account name shared by several, no such user, a wrong password: one answer.
    if (!account || !user) throw new ApiError(401, 'invalid credentials', { credentials: { invalid: { message: 'no user of that account has these credentials' } } });
    const { token, expiresAt } = tokens.issue(account.id, user.kid, user.id);
    (ctx.state as ApiState).log.info({ account: account.id, user: user.id }, 'user token issued');
    reply(ctx, {
      account_id: account.id, account_name: account.name, owner_id: user.id, username: user.username, expires_at: expiresAt.toISOString(),
    }, 201, { auth_token: token });
  };
  router.put('/user_auth', userAuth);
  router.post('/user_auth', userAuth);

  // Kazoo's token_auth: what the presented token is, and signing it out.
  router.get('/token_auth', (ctx) => {
    const claims = claimsOf(ctx);
    reply(ctx, {
      account_id: claims.account_id, ...(claims.user_id ? { owner_id: claims.user_id } : {}), issued_at: new Date(claims.iat * 1000).toISOString(), expires_at: new Date(claims.exp * 1000).toISOString(),
    });
  });
  router.delete('/token_auth', async (ctx) => {
    const claims = claimsOf(ctx);
    // A user signing out ends every token of that user (a new key id): nothing to list, so no
    // number of sign-outs can fill the account's list and end its administrator's tokens.
    if (claims.user_id !== undefined) await store.updateUsers(claims.account_id, (all) => ({ users: all.map((u) => (u.id === claims.user_id ? withNewKid(u) : u)), result: undefined }));
    else await store.revokeToken(claims.account_id, claims.jti, claims.exp);
    (ctx.state as ApiState).log.info({ account: claims.account_id }, 'token revoked (signed out)');
    reply(ctx, {});
  });
  return router;
}

export function requireAccount() {
  return async (ctx: Context & { params: Record<string, string> }, next: Next): Promise<void> => {
    const claims = claimsOf(ctx);
    // Another account's resources answer exactly like resources that do not exist.
    if (ctx.params['accountId'] !== claims.account_id) throw notFound();
    (ctx.state as ApiState).accountId = claims.account_id;
    (ctx.state as ApiState).userId = claims.user_id;
    await next();
  };
}

/** Routes for the account's administrator (its API key): a user's token is answered as if nothing were there. */
export function adminOnly() {
  return async (ctx: Context, next: Next): Promise<void> => {
    if ((ctx.state as ApiState).userId !== undefined) throw notFound();
    await next();
  };
}

function onlyOne<T>(list: readonly T[]): T | undefined {
  return list.length === 1 ? list[0] : undefined;
}
