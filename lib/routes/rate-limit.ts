// A token bucket per client (the account of a valid token, else the address):
// `rate` requests a second on average, bursts up to `burst`.
import type { Context, Next } from 'koa';
import { ApiError } from './errors.js';

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Takes one token for `client`; answers how many ms to wait when there is none. */
  take(client: string): number {
    const t = this.now();
    const b = this.buckets.get(client) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
    this.buckets.set(client, b);
    if (this.buckets.size > 10_000) this.prune(t);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.rate) * 1000);
  }

  private prune(t: number): void {
    for (const [k, b] of this.buckets) if (t - b.at > 60_000) this.buckets.delete(k);
  }
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
