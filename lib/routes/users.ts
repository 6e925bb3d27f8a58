// /v1/accounts/{ACCOUNT_ID}/users: the account's users, in Kazoo's manner
// (PUT creates, POST or PATCH changes, DELETE removes). The account's own
// token administers them; a user's token may read only its own user.
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AccountStore } from '../store/accounts.js';
import { UnknownUserError, USER_ID, viewOf, withUser, type UserKeys } from '../store/users.js';
import { ValidationError } from '../validation.js';
import { adminOnly } from './auth.js';
import { reply, type ApiState } from './envelope.js';
import { ApiError, notFound } from './errors.js';

export function userRoutes(store: AccountStore, keys: UserKeys): Router {
  const router = new Router();
  const state = (ctx: Context) => ctx.state as ApiState;

  /** The `data` of a change, or a 400 saying where it goes. */
  const dataOf = (ctx: Context): unknown => {
    const body = state(ctx).body as { data?: unknown } | undefined;
    if (!body || typeof body !== 'object' || body.data === undefined) {
      throw ApiError.validation([{ field: 'data', rule: 'required', message: 'is required: {"data": {"username": ..., "password": ..., "numbers": [...]}}' }]);
    }
    return body.data;
  };

  const change = async (ctx: Context, id: string | undefined): Promise<void> => {
    const given = dataOf(ctx);
    try {
      const user = await store.updateUsers(state(ctx).accountId!, (users) => {
        const next = withUser(users, id, given, keys);
        return { users: next.users, result: next.user };
      });
      state(ctx).log.info({ account: state(ctx).accountId, user: user.id }, id ? 'user changed' : 'user created');
      reply(ctx, viewOf(user), id ? 200 : 201);
    } catch (err) {
      if (err instanceof ValidationError) throw ApiError.validation(err.errors);
      if (err instanceof UnknownUserError) throw notFound();
      throw err;
    }
  };

  const userOf = async (ctx: Context) => {
    const id = ctx.params['userId']!;
    const { accountId, userId } = state(ctx);
    if (!USER_ID.test(id) || (userId !== undefined && userId !== id)) throw notFound();
    const user = (await store.get(accountId!))?.users?.find((u) => u.id === id);
    if (!user) throw notFound();
    return user;
  };

  router.get('/users', adminOnly(), async (ctx) => {
    const account = await store.get(state(ctx).accountId!);
    if (!account) throw notFound();
    reply(ctx, (account.users ?? []).map(viewOf));
  });
  router.put('/users', adminOnly(), (ctx) => change(ctx, undefined));
  router.get('/users/:userId', async (ctx) => reply(ctx, viewOf(await userOf(ctx))));
  for (const method of ['post', 'patch'] as const) {
    router[method]('/users/:userId', adminOnly(), async (ctx) => change(ctx, (await userOf(ctx)).id));
  }
  router.delete('/users/:userId', adminOnly(), async (ctx) => {
    const { id } = await userOf(ctx);
    await store.updateUsers(state(ctx).accountId!, (users) => ({ users: users.filter((u) => u.id !== id), result: undefined }));
    state(ctx).log.info({ account: state(ctx).accountId, user: id }, 'user removed');
    reply(ctx, {});
  });
  return router;
}
