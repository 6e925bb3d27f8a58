// Token buckets: `rate` uses a second on average, bursts up to `burst`, per
// key (an API client, an account starting transfers). Buckets are kept in
// least-recently-used order and bounded, so a flood of keys costs a fixed
// amount of memory; a timer drops the ones that have refilled (an idle key is
// the same as a new one), oldest first, stopping at the first that has not.
import { performance } from 'node:perf_hooks';

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
    private readonly options: RateLimiterOptions = {},
  ) {
    this.maxClients = options.maxClients ?? 100_000;
    // A monotonic clock: a wall clock stepped back would leave a client in debt for that long.
    this.now = options.now ?? (() => performance.now());
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

  /** How many ms `client` would wait for a token now, taking none. */
  peek(client: string): number {
    const b = this.buckets.get(client);
    if (!b) return 0;
    const tokens = Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.rate);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / this.rate) * 1000);
  }

  /** A limiter with the same rate and burst, and buckets of its own. */
  sibling(): RateLimiter {
    return new RateLimiter(this.rate, this.burst, this.options);
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

