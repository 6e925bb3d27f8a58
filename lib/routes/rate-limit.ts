// The API's rate limit: a token bucket (lib/limits.ts) per client. The client
// is the account a live token proves, else the address the request came from
// (behind a trusted proxy, the address it forwarded): inventing tokens or
// holding several gives no extra quota.
import { isIP } from 'node:net';
import type { Context, Next } from 'koa';
import type { RateLimiter } from '../limits.js';
import type { ApiState } from './envelope.js';
import { ApiError } from './errors.js';

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
