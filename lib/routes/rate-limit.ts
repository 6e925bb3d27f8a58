// A token bucket per client: `rate` requests a second on average, bursts up
// to `burst`. The client is the account a live token proves, else the address
// the request came from (behind a trusted proxy, the address it forwarded):
// inventing tokens or holding several gives no extra quota. Buckets are kept
// in least-recently-used order and bounded, so a flood of addresses costs a
// fixed amount of memory; a timer drops the ones that have refilled (an idle
// client is the same as a new one), oldest first, stopping at the first that
// has not.
import { isIP } from 'node:net';
import type { Context, Next } from 'koa';
import type { ApiState } from './envelope.js';
import { ApiError } from './errors.js';

export interface RateLimiterOptions {
  /** Buckets kept at most; beyond, the least recently used is dropped. */
  maxClients?: number;
  /** How often refilled buckets are dropped (ms); 0: never (tests). */
  pruneEveryMs?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxClients: number;
  private readonly now: () => number;
  private readonly pruner: NodeJS.Timeout | undefined;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    options: RateLimiterOptions = {},
  ) {
    this.maxClients = options.maxClients ?? 100_000;
    this.now = options.now ?? (() => Date.now());
    const every = options.pruneEveryMs ?? 10_000;
    if (every > 0) {
      this.pruner = setInterval(() => this.prune(), every);
      this.pruner.unref();
    }
  }

  /** Takes one token for `client`; answers how many ms to wait when there is none. */
  take(client: string): number {
    const t = this.now();
    let b = this.buckets.get(client);
    if (b) {
      this.buckets.delete(client); // re-inserted below: most recently used last
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
    } else {
      b = { tokens: this.burst, at: t };
      if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.rate) * 1000);
  }

  /** Buckets kept now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops the buckets that have refilled since their last use (least recently used first). */
  prune(): void {
    const t = this.now();
    const refillMs = (this.burst / this.rate) * 1000;
    for (const [client, b] of this.buckets) {
      if (t - b.at < refillMs) break;
      this.buckets.delete(client);
    }
  }

  close(): void {
    if (this.pruner) clearInterval(this.pruner);
  }
}

/** Reads a list of proxy addresses (TRUSTED_PROXIES); throws naming a bad one. */
export function parseProxies(text: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = list.filter((a) => isIP(a) === 0);
  if (bad.length > 0) throw new Error(`not an IP address: ${bad.join(', ')}`);
  return list.map(normalize);
}

function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * The address a request came from. Behind trusted proxies, X-Forwarded-For is
 * read from the right: the first address that is not a trusted proxy is the
 * client (what a client writes at the left cannot choose its bucket).
 */
export function clientAddress(ctx: Context, trusted: ReadonlySet<string>): string {
  let address = normalize(ctx.req.socket.remoteAddress ?? 'unknown');
  if (trusted.size === 0 || !trusted.has(address)) return address;
  const forwarded = (ctx.get('x-forwarded-for') || '').split(',').map((s) => normalize(s.trim())).filter((s) => s !== '');
  for (let i = forwarded.length - 1; i >= 0; i--) {
    address = forwarded[i]!;
    if (!trusted.has(address)) return address;
  }
  return address;
}

/** The client a request counts against: the account its live token proves, else its address. */
export function clientOf(trusted: ReadonlySet<string>) {
  return (ctx: Context): string => {
    const auth = (ctx.state as ApiState).auth;
    return auth?.ok ? `account:${auth.claims.account_id}` : `address:${clientAddress(ctx, trusted)}`;
  };
}

export function rateLimit(limiter: RateLimiter, clientOf: (ctx: Context) => string) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const wait = limiter.take(clientOf(ctx));
    if (wait > 0) {
      throw new ApiError(429, 'too many requests', { rate: { maximum: { message: `retry in ${wait} ms` } } }, {
        'Retry-After': String(Math.ceil(wait / 1000)),
      });
    }
    await next();
  };
}
