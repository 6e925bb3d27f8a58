import Router from '@koa/router';

export interface Readiness {
  /** Each check answers true when that dependency is usable. */
  checks(): Record<string, boolean>;
  /** What else /readyz tells (distributed mode: this instance's role and the leases it holds). */
  details?(): Record<string, unknown>;
}

export function healthRoutes(readiness: Readiness): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const checks = readiness.checks();
    const ready = Object.values(checks).every(Boolean);
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', checks, ...readiness.details?.() };
  });
  return router;
}
