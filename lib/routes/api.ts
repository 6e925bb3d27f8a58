// The HTTP API as one Koa application: health, the OpenAPI document, auth,
// and the account routes behind a token. Routes are thin: validate, call one
// domain function, shape the answer.
import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import type { ModuleRegistry } from '../metaflow/modules.js';
import type { DialRoutes } from '../stasis/dial.js';
import { DEFAULT_MOH_CLASSES } from '../stasis/modules/transfer.js';
import type { AccountStore } from '../store/accounts.js';
import { authRoutes, identify, LOGIN_FAILURES, requireAccount } from './auth.js';
import { channelRoutes, type CallService } from './channels.js';
import { envelope, jsonBody } from './envelope.js';
import { eventRoutes } from './events.js';
import type { Peers } from './forward.js';
import { healthRoutes, type Readiness } from './health.js';
import { metaflowRoutes } from './metaflows.js';
import { OPENAPI } from './openapi.js';
import { RateLimiter } from '../limits.js';
import { rateLimit } from './rate-limit.js';
import type { TokenSigner } from './tokens.js';
import { serveUi } from './ui.js';
import { userRoutes } from './users.js';
import type { UserKeys } from '../store/users.js';
import type { CallEvents } from '../stasis/call-events.js';

export interface ApiDeps {
  store: AccountStore;
  modules: Pick<ModuleRegistry<unknown>, 'get' | 'names'>;
  calls: CallService;
  tokens: TokenSigner;
  /** Requests by address (and by account, unless accountLimiter is given). */
  limiter: RateLimiter;
  accountLimiter?: RateLimiter;
  /** Requests of an account's users, all together (a sibling of limiter unless given). */
  userLimiter?: RateLimiter;
  /** Proxies whose X-Forwarded-For names the client (TRUSTED_PROXIES). */
  trustedProxies?: readonly string[];
  dialRoutes: Pick<DialRoutes, 'namesFor'>;
  /** The music-on-hold classes accounts may name (MOH_CLASSES; default: "default"). */
  mohClasses?: readonly string[];
  /** Seals and checks users' credentials. */
  userKeys: UserKeys;
  /** Failed user_auth attempts per account (default LOGIN_FAILURES). */
  loginFailures?: RateLimiter;
  /** Live changes of calls, for the event streams. */
  events: CallEvents;
  readiness: Readiness;
  /** Distributed mode: the other instances, for requests about calls this one does not drive. */
  peers?: Peers;
  log: Logger;
  metrics?: Metrics;
}

const HEALTH_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const AUTH_PATHS = new Set(['/v1/api_auth', '/v1/user_auth', '/v1/token_auth']);

/** A router's routes, then its 405 answers. */
function mount(router: Router): Koa.Middleware {
  const routes = router.routes() as unknown as Koa.Middleware;
  const allowed = router.allowedMethods() as unknown as Koa.Middleware;
  return (ctx, next) => routes(ctx, () => allowed(ctx, next));
}

/**
 * Runs the first part whose test accepts the request's path (as the routers
 * match paths: any case, one trailing slash or none), else `otherwise`.
 */
function byPath(parts: Array<[(path: string) => boolean, Koa.Middleware]>, otherwise: Koa.Middleware): Koa.Middleware {
  return (ctx, next) => {
    const lower = ctx.path.toLowerCase();
    const path = lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
    for (const [serves, run] of parts) if (serves(path)) return run(ctx, next);
    return otherwise(ctx, next);
  };
}

export interface Api {
  app: Koa;
  /** Every route the API serves, as "METHOD /path/{PARAM}" (for the OpenAPI check). */
  routes(): string[];
}

export function createApi(deps: ApiDeps): Api {
  const app = new Koa();
  // What Koa reports after an answer began: a client that left while its
  // event stream (or a large answer) was being written is no fault.
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET' || err.code === 'EPIPE') deps.log.debug({ err: err.code }, 'client left');
    else deps.log.error({ err }, 'answer failed');
  });
  const health = healthRoutes(deps.readiness);
  const metrics = deps.metrics ?? new Metrics();
  health.get('/metrics', (ctx) => {
    ctx.type = 'text/plain; version=0.0.4; charset=utf-8';
    ctx.body = metrics.render();
  });
  const docs = new Router();
  docs.get('/v1/openapi.json', (ctx) => {
    ctx.body = OPENAPI;
  });
  const auth = authRoutes(deps.store, deps.tokens, deps.userKeys, deps.loginFailures ?? new RateLimiter(LOGIN_FAILURES.perSecond, LOGIN_FAILURES.burst));
  const account = new Router({ prefix: '/v1/accounts/:accountId' });
  account.use(requireAccount());
  const mohClasses = deps.mohClasses ?? DEFAULT_MOH_CLASSES;
  const channels = channelRoutes(deps.calls, deps.store, mohClasses, deps.peers);
  const metaflows = metaflowRoutes(deps.store, deps.modules, deps.dialRoutes, mohClasses);
  const users = userRoutes(deps.store, deps.userKeys);
  const streams = eventRoutes(deps.events, deps.store, undefined, deps.peers);
  // Their 405 answers come from the account router's own (see mount): one check, not one per router.
  for (const r of [channels, metaflows, users, streams]) account.use(r.routes());

  app.use(envelope(deps.log, (route, status) => {
    if (route.startsWith('/v1')) metrics.apiRequests.inc({ route, status: String(status) });
  }));
  // Kazoo's clients call /v2: the same routes answer there.
  app.use((ctx, next) => {
    if (ctx.path.startsWith('/v2/')) ctx.path = `/v1/${ctx.path.slice(4)}`;
    return next();
  });
  // Everything counts against a client's rate, health checks, metrics and the web app included.
  app.use(identify(deps.tokens, deps.store));
  app.use(rateLimit({
    addresses: deps.limiter, accounts: deps.accountLimiter ?? deps.limiter.sibling(), users: deps.userLimiter ?? deps.limiter.sibling(),
  }, new Set(deps.trustedProxies ?? [])));
  // Each request goes to the one part that serves its path; the others never see it.
  const withBody = (run: Koa.Middleware): Koa.Middleware => (ctx, next) => jsonBody(ctx, () => run(ctx, next));
  app.use(byPath([
    [(p) => HEALTH_PATHS.has(p), mount(health)],
    [(p) => p === '/v1/openapi.json', mount(docs)],
    [(p) => AUTH_PATHS.has(p), withBody(mount(auth))],
    [(p) => p.startsWith('/v1/accounts/'), withBody(mount(account))],
  ], serveUi()));

  return {
    app,
    routes: () => {
      const out = new Set<string>();
      for (const r of [health, docs, auth, account]) {
        for (const layer of r.stack) {
          for (const m of layer.methods) {
            if (m === 'HEAD' || layer.methods.length === 0) continue;
            const path = String(layer.path).replace(/:accountId/g, '{ACCOUNT_ID}').replace(/:callId/g, '{CALL_ID}').replace(/:userId/g, '{USER_ID}');
            out.add(`${m} ${path}`);
            if (path.startsWith('/v1/')) out.add(`${m} /v2/${path.slice(4)}`);
          }
        }
      }
      return [...out].sort();
    },
  };
}
