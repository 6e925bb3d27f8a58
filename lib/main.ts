// The composition root: builds configuration, logger, ARI connection, Stasis
// app and HTTP server, and owns shutdown in reverse order.
import { hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { MetaflowBook } from './metaflow/book.js';
import { Metrics, callMetrics } from './metrics.js';
import { ModuleRegistry } from './metaflow/modules.js';
import { createApi } from './routes/api.js';
import { RateLimiter } from './limits.js';
import { startHttp, type HttpServer } from './routes/server.js';
import { TokenSigner } from './routes/tokens.js';
import { CallControl, type OwnerOf } from './stasis/control.js';
import { StasisApp } from './stasis/app.js';
import type { Call } from './stasis/call.js';
import { AriAuthError, AriConnection } from './stasis/connection.js';
import { DialRoutes } from './stasis/dial.js';
import type { CallModule } from './stasis/features.js';
import { builtInModules } from './stasis/modules/index.js';
import type { AccountStore } from './store/accounts.js';
import { openStores } from './store/open.js';
import { ownerOf, UserKeys } from './store/users.js';
import { CallEvents } from './stasis/call-events.js';
import { LOGIN_FAILURES } from './routes/auth.js';

export interface Konami {
  readonly config: Config;
  readonly app: StasisApp;
  readonly ari: AriConnection;
  readonly http: HttpServer;
  readonly store: AccountStore;
  readonly modules: ModuleRegistry<Call>;
  readonly metrics: Metrics;
  /**
   * Stops taking calls and API requests, lets transfers in flight finish for
   * up to graceMs (default SHUTDOWN_GRACE), then hands the calls over to the
   * next konami or hangs them up (SHUTDOWN_CALLS), and disconnects.
   */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /** Feature modules beyond the built-in ones (tests use one to prove dispatch). */
  modules?: CallModule[];
  /** Distributed mode: the lease of the Asterisk was lost (default: the process ends, see fencedExit). */
  onFenced?: (reason: string) => void;
}

/** The exit status of an instance that lost its lease (EX_TEMPFAIL): its supervisor starts it again, as a standby. */
export const EXIT_FENCED = 75;

function fencedExit(): void {
  process.exit(EXIT_FENCED);
}

export async function startKonami(config: Config, log: Logger, options: StartOptions = {}): Promise<Konami> {
  const stores = await openStores(config, log);
  const { accounts: store, journal, secret, lease } = stores;
  const modules = builtInModules();
  const transferRate = new RateLimiter(config.transfers.perMinute / 60, config.transfers.burst);
  const dialRoutes = DialRoutes.over(store, config.dialRoutes);
  for (const m of options.modules ?? []) modules.register(m);
  const book = new MetaflowBook((id) => store.cached(id)?.metaflows, log.child({ component: 'metaflow' }));
  const ari = new AriConnection(config.ari, log.child({ component: 'ari' }));
  let activeCalls = () => 0;
  const metrics = new Metrics(() => activeCalls());
  const app = new StasisApp(
    ari,
    {
      app: config.ari.app,
      dialRoutes,
      ringTimeout: config.ringTimeout,
      recallCallers: config.recallCallers,
      mohClasses: config.mohClasses,
      transferLimits: {
        perCall: config.transfers.perCall,
        perAccount: transferRate,
      },
      features: { matcher: (account) => book.matcherFor(account), module: (name) => modules.get(name) },
      metrics: callMetrics(metrics),
      journal,
    },
    log,
  );
  activeCalls = () => app.activeCalls.size;

  // After every (re)connection konami compares its calls with Asterisk's and
  // is not ready until it has: events may have been missed meanwhile.
  let reconciled = false;
  let reconciling: Promise<void> | undefined;
  let again = false;
  const reconcile = (): Promise<void> => {
    if (reconciling) {
      again = true;
      return reconciling;
    }
    reconciled = false;
    reconciling = (async () => {
      do {
        again = false;
        try {
          await app.reconcile();
        } catch (err) {
          log.error({ err: (err as Error).message }, 'could not reconcile with Asterisk; retrying in 1 s');
          again = ari.connected;
          if (again) await new Promise((r) => setTimeout(r, 1000));
        }
      } while (again && ari.connected);
      reconciled = ari.connected;
      reconciling = undefined;
    })();
    return reconciling;
  };
  let connections = 0;
  ari.on('connected', () => {
    if (++connections > 1) {
      metrics.ariReconnects.inc();
      void reconcile();
    }
  });
  ari.on('disconnected', () => {
    reconciled = false;
    log.warn('ARI disconnected: not ready');
  });
  ari.on('event', (e) => app.handle(e));
  const owners: OwnerOf = (account, number) => (account ? ownerOf(store.cached(account)?.users, number) : undefined);
  const limiter = new RateLimiter(config.api.rateLimit, config.api.rateLimit * 2);
  const accountLimiter = limiter.sibling();
  const userLimiter = limiter.sibling();
  const loginFailures = new RateLimiter(LOGIN_FAILURES.perSecond, LOGIN_FAILURES.burst);
  const events = new CallEvents(app, owners, log.child({ component: 'events' }));
  const api = createApi({
    store,
    modules,
    calls: new CallControl(app, (id) => store.cached(id)?.metaflows, () => ari.connected && reconciled, owners),
    dialRoutes,
    mohClasses: config.mohClasses,
    tokens: new TokenSigner(secret, config.api.tokenTtl),
    userKeys: new UserKeys(secret),
    events,
    limiter,
    accountLimiter,
    userLimiter,
    loginFailures,
    trustedProxies: config.api.trustedProxies,
    peers: stores.peers && { addresses: stores.peers },
    readiness: {
      // A standby is ready when it can answer the API (it puts requests about calls to the instances that have them).
      checks: (): Record<string, boolean> => (lease && !lease.held ? { store: store.usable() } : { ari: ari.connected, store: store.usable(), calls_reconciled: reconciled }),
      details: () => (lease ? { role: lease.held ? 'active' : 'standby', instance: lease.holder, leases: lease.held ? [lease.asterisk] : [] } : {}),
    },
    log: log.child({ component: 'http' }),
    metrics,
  });
  const http = await startHttp(config.http, api.app, log.child({ component: 'http' }));
  if (lease) {
    // Distributed mode: another instance may drive this Asterisk; this one waits on standby until the lease is
    // its own. Once lost, it stops at once: nothing it does after may reach Asterisk or the journal.
    ari.onlyWhile(() => lease.held);
    metrics.leaseHeld.set(0, { asterisk: lease.asterisk });
    lease.on('acquired', () => metrics.leaseHeld.set(1, { asterisk: lease.asterisk }));
    lease.on('lost', (reason: string) => {
      metrics.leaseHeld.set(0, { asterisk: lease.asterisk });
      void ari.stop();
      (options.onFenced ?? fencedExit)(reason);
    });
    lease.start(config.cluster.advertisedUrl ?? advertised(config.http.host, http.port));
    log.info({ asterisk: lease.asterisk, instance: lease.holder }, 'standby: waiting for the lease of this Asterisk');
    await lease.acquired();
  }
  const taken = app.restore(await journal.loadAll());
  if (taken > 0) log.info({ calls: taken }, 'calls kept by the previous process taken back');
  try {
    await ari.start();
  } catch (err) {
    await http.close();
    await store.close();
    await journal.close();
    await lease?.stop(true);
    await stores.close();
    throw err;
  }
  await reconcile();
  // Measured from here: starting (loading ARI's description, say) is not serving.
  metrics.watchEventLoop();
  let stopped: Promise<void> | undefined;
  return {
    config,
    app,
    ari,
    http,
    store,
    modules,
    metrics,
    stop(graceMs = config.shutdown.grace * 1000) {
      stopped ??= (async () => {
        app.stopAccepting();
        const mode = config.shutdown.calls;
        log.info({ grace_ms: graceMs, calls: mode, transfers: app.transfersInFlight }, 'stopping: no new calls or API requests');
        const handOver = (async () => {
          // Event streams would hold the server open until their tokens expire.
          events.close();
          await http.close();
          if (!(await app.transfersSettled(graceMs))) {
            log.warn({ transfers: app.transfersInFlight }, 'transfers still in progress after the grace period');
          }
          if (mode === 'hangup') {
            if (app.activeCalls.size > 0) log.warn({ calls: app.activeCalls.size }, 'calls still up at shutdown: hanging them up');
            await Promise.all([...app.activeCalls.values()].map((c) => c.hangUpAll()));
            await app.drained(5000);
          } else {
            await app.settled();
            if (app.activeCalls.size > 0) {
              log.info({ calls: app.activeCalls.size, transfers: app.transfersInFlight },
                'calls handed over: they stay up in Asterisk and the next konami takes them back');
            }
          }
        })();
        // An Asterisk that no longer answers must not keep konami from stopping.
        let deadline: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => {
          deadline = setTimeout(() => {
            log.error({ calls: app.activeCalls.size }, 'shutdown did not finish in time: stopping anyway');
            resolve();
          }, graceMs + 10_000);
        });
        await Promise.race([handOver, late]);
        clearTimeout(deadline);
        await ari.stop();
        // Steps that were running when the events stopped keep their records too.
        await Promise.race([app.settled(), new Promise((r) => setTimeout(r, 2000))]);
        await journal.close();
        // The journal is written: the next instance may take the calls at once.
        await lease?.stop(true);
        limiter.close();
        accountLimiter.close();
        userLimiter.close();
        loginFailures.close();
        metrics.stop();
        transferRate.close();
        await store.close();
        await stores.close();
        log.info('stopped');
      })();
      return stopped;
    },
  };
}

/** Where this instance's API answers, as another machine would reach it (an address that listens everywhere names the machine). */
function advertised(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`konami: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  let konami: Konami | undefined;
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    if (!konami) resolveExit(0); // still waiting for ARI: no call to look after
    else void konami.stop().then(() => resolveExit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  try {
    konami = await Promise.race([startKonami(config, log), exited.then(() => undefined)]);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof AriAuthError) {
      log.fatal(err.message);
      process.stderr.write(`konami: ${err.message}\n`);
      return err instanceof ConfigError ? 2 : 3;
    }
    throw err;
  }
  return exited;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`konami: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
