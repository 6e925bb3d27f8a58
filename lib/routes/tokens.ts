// Auth tokens: a payload signed with HMAC-SHA256 under a secret every konami
// instance of a deployment shares, so any of them can verify any token.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface TokenClaims {
  account_id: string;
  /** Seconds since the epoch. */
  exp: number;
  iat: number;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; why: 'malformed' | 'forged' | 'expired' };

export class TokenSigner {
  constructor(
    private readonly secret: Buffer,
    private readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  issue(accountId: string): { token: string; expiresAt: Date } {
    const iat = Math.floor(this.now() / 1000);
    const claims: TokenClaims & { jti: string } = { account_id: accountId, iat, exp: iat + this.ttlSeconds, jti: randomBytes(8).toString('hex') };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return { token: `v1.${payload}.${this.sign(payload)}`, expiresAt: new Date(claims.exp * 1000) };
  }

  verify(token: string): TokenCheck {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1' || !/^[A-Za-z0-9_-]+$/.test(parts[1]!) || !/^[A-Za-z0-9_-]{43}$/.test(parts[2]!)) {
      return { ok: false, why: 'malformed' };
    }
    const expected = Buffer.from(this.sign(parts[1]!), 'base64url');
    const given = Buffer.from(parts[2]!, 'base64url');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, why: 'forged' };
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return { ok: false, why: 'malformed' };
    }
    if (typeof claims.exp !== 'number' || typeof claims.account_id !== 'string') return { ok: false, why: 'malformed' };
    if (claims.exp * 1000 <= this.now()) return { ok: false, why: 'expired' };
    return { ok: true, claims };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(`v1.${payload}`).digest('base64url');
  }
}
