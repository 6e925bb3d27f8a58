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
  const bad = list.filter((a) => isIP(a.replace(/%.*$/, '')) === 0);
  if (bad.length > 0) throw new Error(`not an IP address: ${bad.join(', ')}`);
  return list.map(normalize);
}

/**
 * One spelling per address: IPv6 without its zone, lower case and compressed
 * as a URL host is, an IPv4-mapped IPv6 address as its IPv4 address.
 */
export function normalize(address: string): string {
  const bare = address.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return bare;
  const host = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** An address as one client: IPv4 whole, IPv6 by its /64 (one subscriber's network). */
export function clientKey(address: string): string {
  const canonical = normalize(address);
  if (isIP(canonical) !== 6) return canonical;
  const [head, tail] = canonical.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** An X-Forwarded-For entry as an address: a port some proxies append is dropped; anything else is no address. */
function forwardedAddress(entry: string): string | undefined {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  const candidate = bracketed ? bracketed[1]! : /^[^:]+:\d+$/.test(entry) ? entry.slice(0, entry.lastIndexOf(':')) : entry;
  return isIP(candidate.replace(/%.*$/, '')) === 0 ? undefined : normalize(candidate);
}

/**
 * The address a request came from. Behind trusted proxies, X-Forwarded-For is
 * read from the right: the first address that is not a trusted proxy is the
 * client (what a client writes at the left cannot choose its bucket; an entry
 * that is no address ends the walk at the proxy that wrote it).
 */
export function clientAddress(ctx: Context, trusted: ReadonlySet<string>): string {
  let address = normalize(ctx.req.socket.remoteAddress ?? 'unknown');
  if (trusted.size === 0 || !trusted.has(address)) return address;
  const forwarded = (ctx.get('x-forwarded-for') || '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (let i = forwarded.length - 1; i >= 0; i--) {
    const next = forwardedAddress(forwarded[i]!);
    if (next === undefined) return address;
    address = next;
    if (!trusted.has(address)) return address;
  }
  return address;
}

/**
 * The bucket a request counts against: its account's when a live token of
 * the account proves one, the account's users' (all together) when a user's
 * token does, else its address's. Each has its own limiter, so a flood of
 * addresses never pushes an account's bucket (and its debt) out, and an
 * account's users cannot spend its administrator's requests.
 */
export function rateLimit(limits: { accounts: RateLimiter; users: RateLimiter; addresses: RateLimiter }, trusted: ReadonlySet<string>) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const auth = (ctx.state as ApiState).auth;
    const wait = auth?.ok
      ? (auth.claims.user_id === undefined ? limits.accounts : limits.users).take(auth.claims.account_id)
      : limits.addresses.take(clientKey(clientAddress(ctx, trusted)));
    if (wait > 0) {
      throw new ApiError(429, 'too many requests', { rate: { maximum: { message: `retry in ${wait} ms` } } }, {
        'Retry-After': String(Math.ceil(wait / 1000)),
      });
    }
    await next();
  };
}
