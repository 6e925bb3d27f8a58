// Configuration is read once from the environment, validated as a whole and
// frozen. A bad setting stops the start with a message that names it.
import { hostname } from 'node:os';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';
import { parseProxies } from './routes/rate-limit.js';
import { DEFAULT_ROUTE, RECALL_CALLERS, parseRoutes, templateProblem, type RecallCallers } from './stasis/dial.js';

export interface Config {
  readonly ari: {
    /**
     * The Asterisk servers (ARI_URL, comma separated, each `[name=]url`):
     * several only with DATABASE_URL. The name is the server's in the
     * database (leases, journal); by default its address's host and port.
     */
    readonly servers: readonly AsteriskServer[];
    readonly username: string;
    readonly password: string;
    readonly app: string;
  };
  readonly http: { readonly host: string; readonly port: number };
  readonly dataDir: string;
  /**
   * DATABASE_URL: accounts, keys, users, dial routes and the calls in
   * progress kept in PostgreSQL, shared by every instance (undefined: files
   * under DATA_DIR, one instance).
   */
  readonly databaseUrl: string | undefined;
  /** Distributed mode: how instances share the driving of an Asterisk server. */
  readonly cluster: {
    /** This instance's name in the lease table (INSTANCE_ID; default host name and process id). */
    readonly instanceId: string;
    /** A lease term, in seconds (LEASE_SECONDS): a dead holder is replaced within 4/3 of this. */
    readonly leaseSeconds: number;
    /** Where the other instances reach this one's API (ADVERTISED_URL; default from HTTP_HOST and HTTP_PORT). */
    readonly advertisedUrl: string | undefined;
    /**
     * Seconds a driving instance may go without reaching its Asterisk before
     * it lets the server go to an instance that may reach it (ARI_GIVE_UP; 0:
     * never).
     */
    readonly ariGiveUpSeconds: number;
  };
  /**
   * Dial routes by name, each a template with {target}: `default` is
   * DIAL_TEMPLATE (applied to the dialled extension when the dialplan gives no
   * dial= argument, and the transfer route of every account unless the
   * operator says otherwise); DIAL_ROUTES adds others.
   */
  readonly dialRoutes: Readonly<Record<string, string>>;
  /** The music-on-hold classes an account may name for a transfer (MOH_CLASSES). */
  readonly mohClasses: readonly string[];
  /** Seconds the called party may ring before the call fails as "no answer". */
  readonly ringTimeout: number;
  /** How a caller who transferred and left is called back when the target fails. */
  readonly recallCallers: RecallCallers;
  /** How many transfers may be started, so that no account can use transfers as a dialler. */
  readonly transfers: {
    /** In one call, over its whole life. */
    readonly perCall: number;
    /** By one account, a minute on average... */
    readonly perMinute: number;
    /** ...and at once. */
    readonly burst: number;
  };
  readonly logLevel: LogLevel;
  /** LOG_FORMAT: json, pretty, or auto (readable at a terminal, JSON lines otherwise). */
  readonly logFormat: LogFormat;
  readonly shutdown: {
    /** Seconds SIGTERM waits for transfers in flight to finish. */
    readonly grace: number;
    /** What becomes of the calls still up after that: kept for the next konami, or hung up. */
    readonly calls: ShutdownCalls;
  };
  readonly api: {
    /** Signs auth tokens; every instance of a deployment needs the same. Undefined: kept in DATA_DIR/auth-secret. */
    readonly authSecret: string | undefined;
    /** Seconds an auth token is valid. */
    readonly tokenTtl: number;
    /** Requests a second one client (an account, else an address) may make on average (bursts of twice that). */
    readonly rateLimit: number;
    /** Proxies in front of konami whose X-Forwarded-For names the client's address. */
    readonly trustedProxies: readonly string[];
  };
}

export interface AsteriskServer {
  readonly name: string;
  readonly url: string;
}

/** The shortest token-signing secret konami accepts: 256 bits. */
export const MIN_SECRET_BYTES = 32;

export const SHUTDOWN_CALLS = ['handover', 'hangup'] as const;
export type ShutdownCalls = (typeof SHUTDOWN_CALLS)[number];


export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string, check?: (v: string) => string | undefined): string {
    const v = this.raw(name) ?? fallback;
    const problem = check?.(v);
    if (problem) this.problems.push(`${name}: ${problem} (got ${JSON.stringify(v)})`);
    return v;
  }

  required(name: string, why: string): string {
    const v = this.raw(name);
    if (v === undefined) {
      this.problems.push(`${name}: is required (${why})`);
      return '';
    }
    return v;
  }

  /** Never echoes the value: it is a secret. */
  secret(name: string, why: string): string {
    const v = this.env[name];
    if (v === undefined || v === '') {
      this.problems.push(`${name}: is required (${why})`);
      return '';
    }
    return v;
  }

  /** A secret that may be absent; never echoed. */
  optionalSecret(name: string, minBytes: number): string | undefined {
    const v = this.env[name];
    if (v === undefined || v === '') return undefined;
    if (Buffer.byteLength(v, 'utf8') < minBytes) this.problems.push(`${name}: must be at least ${minBytes} bytes`);
    return v;
  }

  /** A setting parsed by `parse`, which throws naming what is wrong. */
  parsed<T>(name: string, fallback: T, parse: (v: string) => T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    try {
      return parse(v);
    } catch (err) {
      this.problems.push(`${name}: ${(err as Error).message}`);
      return fallback;
    }
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problems.push(`${name}: must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
      return fallback;
    }
    return Number(v);
  }
}

/**
 * One or several ARI addresses, comma separated, each `[name=]url` (the name
 * defaults to the address's host and port), each named by its problem; no
 * server, and no name, twice.
 */
export function parseAriUrls(v: string): AsteriskServer[] {
  const entries = v.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (entries.length === 0) throw new Error('must name at least one Asterisk, such as http://127.0.0.1:8088');
  const servers: AsteriskServer[] = [];
  const problems: string[] = [];
  for (const entry of entries) {
    const named = /^([A-Za-z0-9_.-]{1,64})=(.*)$/.exec(entry);
    const url = (named ? named[2]! : entry).trim().replace(/\/+$/, '');
    const problem = ariUrlProblem(url);
    // The value is not repeated: a password (with a comma in it, say) may be part of it.
    if (problem) problems.push(`${problem} (entry ${servers.length + problems.length + 1})`);
    else servers.push({ name: named ? named[1]! : new URL(url).host, url });
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  const hosts = servers.map((s) => new URL(s.url).host);
  if (new Set(hosts).size !== hosts.length) throw new Error('names one Asterisk server twice');
  if (new Set(servers.map((s) => s.name)).size !== servers.length) throw new Error('gives two servers one name');
  return servers;
}

function ariUrlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be a URL such as http://127.0.0.1:8088';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must start with http:// or https://';
  if (u.username || u.password) return 'must not carry credentials: use ARI_USERNAME and ARI_PASSWORD';
  if (u.pathname !== '/' && u.pathname !== '') return 'must be the server address only, without a path such as /ari';
  if (u.search || u.hash) return 'must be the server address only, without a query';
  return undefined;
}

/** DATABASE_URL, never echoed (it may carry a password). */
function readDatabaseUrl(r: Reader): string | undefined {
  return r.parsed('DATABASE_URL', undefined, (v) => {
    const problem = databaseUrlProblem(v);
    if (problem) throw new Error(problem);
    return v;
  });
}

export function databaseUrlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be a URL such as postgres://konami:PASSWORD@db.example:5432/konami (not shown: it may hold a password)';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return 'must start with postgres:// or postgresql://';
  if (u.pathname.length <= 1) return 'must name the database, as in postgres://konami@db.example/konami';
  return undefined;
}

/** DATABASE_URL alone (for the command line). */
export function loadDatabaseUrl(env: Env = process.env): string | undefined {
  const r = new Reader(env);
  const url = readDatabaseUrl(r);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return url;
}

function readDialRoutes(r: Reader): Record<string, string> {
  return {
    // {exten} is DIAL_TEMPLATE's historical name for the number.
    [DEFAULT_ROUTE]: r.string('DIAL_TEMPLATE', 'PJSIP/{exten}', (v) => templateProblem(v.replace('{exten}', '{target}')))
      .replace('{exten}', '{target}'),
    ...r.parsed('DIAL_ROUTES', {}, (v) => Object.fromEntries(parseRoutes(v))),
  };
}

/** DIAL_TEMPLATE and DIAL_ROUTES alone, as konami reads them (for the command line). */
export function loadDialRoutes(env: Env = process.env): Readonly<Record<string, string>> {
  const r = new Reader(env);
  const routes = readDialRoutes(r);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return routes;
}

/** MOH_CLASSES: Asterisk's music-on-hold classes accounts may choose from (comma separated; default "default"). */
function readMohClasses(r: Reader): readonly string[] {
  return r.parsed('MOH_CLASSES', ['default'], (v) => {
    const names = v.split(',').map((n) => n.trim()).filter((n) => n !== '');
    const bad = names.filter((n) => !/^[A-Za-z0-9_-]{1,64}$/.test(n));
    if (names.length === 0 || bad.length > 0) throw new Error(`must be class names (letters, digits, _ and -), comma separated${bad.length ? `: not ${bad.join(', ')}` : ''}`);
    return [...new Set(names)];
  });
}

export function loadMohClasses(env: Env = process.env): readonly string[] {
  const r = new Reader(env);
  const classes = readMohClasses(r);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return classes;
}

export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const servers = r.parsed('ARI_URL', [{ name: '127.0.0.1:8088', url: 'http://127.0.0.1:8088' }], parseAriUrls);
  const databaseUrl = readDatabaseUrl(r);
  if (servers.length > 1 && !databaseUrl) r.problems.push('ARI_URL: several Asterisk servers need DATABASE_URL (distributed mode)');
  const config: Config = {
    ari: {
      servers,
      username: r.required('ARI_USERNAME', 'the ARI user of ari.conf'),
      password: r.secret('ARI_PASSWORD', 'the password of that ARI user'),
      app: r.string('ARI_APP', 'konami', (v) =>
        /^[A-Za-z0-9_.-]{1,64}$/.test(v) ? undefined : 'must be 1 to 64 letters, digits, "_", "." or "-"'),
    },
    http: {
      host: r.string('HTTP_HOST', '127.0.0.1'),
      port: r.integer('HTTP_PORT', 8000, 0, 65535),
    },
    dataDir: r.string('DATA_DIR', 'data'),
    databaseUrl,
    cluster: {
      instanceId: r.string('INSTANCE_ID', `${hostname()}-${process.pid}`, (v) =>
        /^[A-Za-z0-9_.:-]{1,128}$/.test(v) ? undefined : 'must be 1 to 128 letters, digits, "_", ".", ":" or "-"'),
      leaseSeconds: r.integer('LEASE_SECONDS', 3, 2, 60),
      ariGiveUpSeconds: r.integer('ARI_GIVE_UP', 30, 0, 3600),
      advertisedUrl: r.parsed('ADVERTISED_URL', undefined, (v) => {
        const u = new URL(v);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('must start with http:// or https://');
        if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search) throw new Error('must be the address only, as http://10.0.0.5:8000');
        return v.replace(/\/+$/, '');
      }),
    },
    dialRoutes: readDialRoutes(r),
    mohClasses: readMohClasses(r),
    ringTimeout: r.integer('RING_TIMEOUT', 30, 1, 600),
    recallCallers: r.string('RECALL_CALLERS', 'device', (v) =>
      (RECALL_CALLERS as readonly string[]).includes(v) ? undefined : `must be one of ${RECALL_CALLERS.join(', ')}`) as RecallCallers,
    transfers: {
      perCall: r.integer('TRANSFERS_PER_CALL', 10, 1, 1000),
      perMinute: r.integer('TRANSFERS_PER_MINUTE', 60, 1, 100_000),
      burst: r.integer('TRANSFERS_BURST', 10, 1, 100_000),
    },
    shutdown: {
      grace: r.integer('SHUTDOWN_GRACE', 10, 0, 3600),
      calls: r.string('SHUTDOWN_CALLS', 'handover', (v) =>
        (SHUTDOWN_CALLS as readonly string[]).includes(v) ? undefined : `must be one of ${SHUTDOWN_CALLS.join(', ')}`) as ShutdownCalls,
    },
    api: {
      authSecret: r.optionalSecret('AUTH_SECRET', MIN_SECRET_BYTES),
      tokenTtl: r.integer('AUTH_TOKEN_TTL', 3600, 60, 86_400),
      rateLimit: r.integer('RATE_LIMIT', 50, 1, 100_000),
      trustedProxies: r.parsed('TRUSTED_PROXIES', [], parseProxies),
    },
    logLevel: r.string('LOG_LEVEL', 'info', (v) =>
      (LOG_LEVELS as readonly string[]).includes(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}`) as LogLevel,
    logFormat: r.string('LOG_FORMAT', 'auto', (v) =>
      (LOG_FORMATS as readonly string[]).includes(v) ? undefined : `must be one of ${LOG_FORMATS.join(', ')}`) as LogFormat,
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (v && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(o);
}
