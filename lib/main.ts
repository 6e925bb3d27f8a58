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
import { Station, Stations } from './stasis/station.js';
import { ownerOf, UserKeys } from './store/users.js';
import { CallEvents } from './stasis/call-events.js';
import { LOGIN_FAILURES } from './routes/auth.js';

export interface Konami {
  readonly config: Config;
  /** The first Asterisk's application and connection (the only ones without a database). */
  readonly app: StasisApp;
  readonly ari: AriConnection;
  /** Every Asterisk this instance may drive. */
  readonly stations: Stations;
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
  const { accounts: store, secret } = stores;
  const modules = builtInModules();
  const transferRate = new RateLimiter(config.transfers.perMinute / 60, config.transfers.burst);
  const dialRoutes = DialRoutes.over(store, config.dialRoutes);
  for (const m of options.modules ?? []) modules.register(m);
  const book = new MetaflowBook((id) => store.cached(id)?.metaflows, log.child({ component: 'metaflow' }));
  let activeCalls = () => 0;
  const metrics = new Metrics(() => activeCalls());
  const callSettings = {
    dialRoutes,
    ringTimeout: config.ringTimeout,
    recallCallers: config.recallCallers,
    mohClasses: config.mohClasses,
    transferLimits: { perCall: config.transfers.perCall, perAccount: transferRate },
    features: { matcher: (account: string | undefined) => book.matcherFor(account), module: (name: string) => modules.get(name) },
    metrics: callMetrics(metrics),
  };
  // One station per Asterisk server; each waits for its own lease in distributed mode.
  const stations = new Stations(config.ari.servers.map(({ name: asterisk, url }) => {
    const { journal, lease } = stores.station(asterisk);
    const { username, password, app } = config.ari;
    const only = config.ari.servers.length === 1;
    return new Station(asterisk, {
      ari: { url, username, password, app }, app: callSettings, journal, lease, metrics, giveUpMs: config.cluster.ariGiveUpSeconds * 1000,
    }, only ? log : log.child({ asterisk }));
  }));
  const first = stations.all[0]!;
  activeCalls = () => stations.size;
  const owners: OwnerOf = (account, number) => (account ? ownerOf(store.cached(account)?.users, number) : undefined);
  const limiter = new RateLimiter(config.api.rateLimit, config.api.rateLimit * 2);
  const accountLimiter = limiter.sibling();
  const userLimiter = limiter.sibling();
  const loginFailures = new RateLimiter(LOGIN_FAILURES.perSecond, LOGIN_FAILURES.burst);
  const events = new CallEvents(stations, owners, log.child({ component: 'events' }));
  const distributed = stores.holder !== undefined;
  const api = createApi({
    store,
    modules,
    calls: new CallControl(stations, (id) => store.cached(id)?.metaflows, (call) => stations.available(call), owners),
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
      // Every Asterisk this instance drives is connected and reconciled; a standby (driving none) is ready when it
      // can answer the API (it puts requests about calls to the instances that have them).
      checks: (): Record<string, boolean> => {
        const driving = stations.all.filter((s) => !s.standby);
        if (distributed && driving.length === 0) return { store: store.usable() };
        return { ari: driving.every((s) => s.ari.connected), store: store.usable(), calls_reconciled: driving.every((s) => s.ready) };
      },
      details: () => (distributed
        ? { role: stations.all.some((s) => !s.standby) ? 'active' : 'standby', instance: stores.holder, leases: stations.all.filter((s) => !s.standby).map((s) => s.asterisk) }
        : {}),
    },
    log: log.child({ component: 'http' }),
    metrics,
  });
  const http = await startHttp(config.http, api.app, log.child({ component: 'http' }));
  const advertise = config.cluster.advertisedUrl ?? advertised(config.http.host, http.port);
  if (distributed && !config.cluster.advertisedUrl && /^http:\/\/(127\.|\[::1\]|localhost)/.test(advertise)) {
    log.warn({ advertised: advertise }, 'ADVERTISED_URL not set: other instances reach this one on this machine only');
  }
  // Distributed mode: once a lease is lost the instance stops at once (see fencedExit); nothing it does after may
  // reach Asterisk or the journal.
  for (const s of stations.all) {
    s.lease?.on('lost', (reason: string) => (options.onFenced ?? fencedExit)(reason));
    // A server this instance drives but cannot reach: let go of it (the lease is given back first), and start again
    // as a standby, so an instance that reaches it may drive it.
    s.on('gave up', (reason: string) => {
      // The servers this instance drives well are given back too, so their next drivers need not wait for a deadline.
      void Promise.all(stations.all.map((other) => other.lease?.stop(true))).finally(() => (options.onFenced ?? fencedExit)(reason));
    });
  }
  const closeAll = async () => {
    await http.close();
    await store.close();
    for (const s of stations.all) {
      await s.journal.close();
      await s.lease?.stop(true);
    }
    await stores.close();
  };
  if (!distributed) {
    try {
      await first.start(advertise);
    } catch (err) {
      await closeAll();
      throw err;
    }
  } else {
    // Each station drives its Asterisk once its lease is this instance's; until then the instance is a standby.
    for (const s of stations.all) {
      s.start(advertise).catch((err: Error) => {
        log.fatal({ asterisk: s.asterisk, err: err.message }, 'could not drive this Asterisk');
        (options.onFenced ?? fencedExit)(err.message);
      });
    }
  }
  // Measured from here: starting (loading ARI's description, say) is not serving.
  metrics.watchEventLoop();
  let stopped: Promise<void> | undefined;
  return {
    config,
    app: first.app,
    ari: first.ari,
    stations,
    http,
    store,
    modules,
    metrics,
    stop(graceMs = config.shutdown.grace * 1000) {
      stopped ??= (async () => {
        for (const s of stations.all) s.app.stopAccepting();
        const mode = config.shutdown.calls;
        log.info({ grace_ms: graceMs, calls: mode, transfers: stations.all.reduce((n, s) => n + s.app.transfersInFlight, 0) }, 'stopping: no new calls or API requests');
        // Event streams would hold the server open until their tokens expire.
        events.close();
        await http.close();
        await Promise.all(stations.all.map((s) => s.stop(mode, graceMs)));
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
  // A closed terminal or log pipe loses the log lines; it must not end konami, least of all halfway through a stop.
  process.stdout.on('error', () => undefined);
  const log = createLogger(config.logLevel, process.stdout, config.logFormat);
  let konami: Konami | undefined;
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  let stopping = false;
  const shutdown = (signal: string) => {
    // One stop, however many signals ask for it (a terminal's Ctrl-C and a supervisor's SIGTERM both arrive): a
    // second one must not kill konami in the middle of handing its calls over. SIGKILL still ends it at once.
    if (stopping) {
      log.warn({ signal }, 'already stopping: the calls are being handed over or ended');
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    if (!konami) resolveExit(0); // still waiting for ARI: no call to look after
    else void konami.stop().then(() => resolveExit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // The terminal konami ran in was closed: the same stop, not a death halfway through a handover.
  process.on('SIGHUP', () => shutdown('SIGHUP'));
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
