// /v1/accounts/{ACCOUNT_ID}/metaflows: read, replace (validated by the
// engine's own validator) and remove an account's feature codes.
import Router from '@koa/router';
import type { Context } from 'koa';
import { validateMetaflows } from '../metaflow/config.js';
import type { ModuleRegistry } from '../metaflow/modules.js';
import type { DialRoutes } from '../stasis/dial.js';
import type { AccountStore } from '../store/accounts.js';
import { ValidationError } from '../validation.js';
import { reply, type ApiState } from './envelope.js';
import { adminOnly } from './auth.js';
import { ApiError, notFound } from './errors.js';

export function metaflowRoutes(
  store: AccountStore, modules: Pick<ModuleRegistry<unknown>, 'get' | 'names'>, dialRoutes: Pick<DialRoutes, 'namesFor'>,
  mohClasses: readonly string[],
): Router {
  const router = new Router();
  const accountId = (ctx: Context) => (ctx.state as ApiState).accountId!;
  // The account's codes are its administrator's: a user's token finds nothing here.
  const admin = adminOnly();

  router.get('/metaflows', admin, async (ctx) => {
    const account = await store.get(accountId(ctx));
    if (!account) throw notFound();
    reply(ctx, account.metaflows);
  });

  router.post('/metaflows', admin, async (ctx) => {
    const body = (ctx.state as ApiState).body as { data?: unknown } | undefined;
    if (!body || typeof body !== 'object' || body.data === undefined) {
      throw ApiError.validation([{ field: 'data', rule: 'required', message: 'is required: {"data": {...metaflows}}' }]);
    }
    let metaflows;
    try {
      metaflows = validateMetaflows(body.data, modules, { dialRoutes: dialRoutes.namesFor(accountId(ctx)), mohClasses });
    } catch (err) {
      if (err instanceof ValidationError) throw ApiError.validation(err.errors.map((e) => ({ ...e, field: e.field === '(body)' ? 'data' : `data.${e.field}` })));
      throw err;
    }
    if (!(await store.get(accountId(ctx)))) throw notFound();
    const account = await store.setMetaflows(accountId(ctx), metaflows);
    (ctx.state as ApiState).log.info({ account: account.id }, 'metaflows replaced');
    reply(ctx, account.metaflows);
  });

  router.delete('/metaflows', admin, async (ctx) => {
    if (!(await store.get(accountId(ctx)))) throw notFound();
    await store.setMetaflows(accountId(ctx), null);
    reply(ctx, null);
  });

  return router;
}
