// Auth tokens: a payload signed with HMAC-SHA256 under a secret every konami
// instance of a deployment shares, so any of them can verify any token. A
// token names the API key it came from (kid) and has its own id (jti), so it
// dies with its key (rotation, account removal) or alone (sign-out). Each
// token has exactly one spelling: base64url that decodes to the same bytes
// with other padding bits is refused, as is a lifetime longer than the TTL.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface TokenClaims {
  account_id: string;
  /** A user's token: the user it speaks for (absent: the account's own token, from an API key). */
  user_id?: string;
  /** The id of the API key (or of the user's password) the token was issued for. */
  kid: string;
  /** The token's own id. */
  jti: string;
  /** Seconds since the epoch. */
  exp: number;
  iat: number;
}

export type TokenProblem = 'malformed' | 'forged' | 'expired' | 'revoked';
export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; why: TokenProblem };

/** What a request's token turned out to be: none given, or its check. */
export type AuthState = TokenCheck | undefined;

/** A clock step between instances that a token's issue time may be ahead by. */
const CLOCK_SKEW_SECONDS = 60;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
/**
 * Tokens whose spelling and signature were checked, remembered so that a
 * client's every request does not pay an HMAC and a parse again. Only tokens
 * this deployment signed get in (a forged one costs its sender, not the
 * cache), the oldest go first past the limit, and the time checks (and the
 * revocation checks of the caller) are made on every request all the same.
 */
const VERIFIED_KEPT = 10_000;

export class TokenSigner {
  private readonly verified = new Map<string, TokenClaims>();

  constructor(
    private readonly secret: Buffer,
    private readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  issue(accountId: string, keyId: string, userId?: string): { token: string; claims: TokenClaims; expiresAt: Date } {
    const iat = Math.floor(this.now() / 1000);
    const claims: TokenClaims = {
      account_id: accountId, ...(userId ? { user_id: userId } : {}), kid: keyId, jti: randomBytes(12).toString('base64url'), iat, exp: iat + this.ttlSeconds,
    };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return { token: `v1.${payload}.${this.sign(payload)}`, claims, expiresAt: new Date(claims.exp * 1000) };
  }

  verify(token: string): TokenCheck {
    const claims = this.verified.get(token) ?? this.checkSignature(token);
    if (!('jti' in claims)) return claims;
    const nowSeconds = this.now() / 1000;
    // A token living longer than the TTL, or issued in the future, was not made by this deployment's rules.
    if (claims.exp - claims.iat > this.ttlSeconds || claims.iat > nowSeconds + CLOCK_SKEW_SECONDS) return { ok: false, why: 'forged' };
    if (claims.exp <= nowSeconds) {
      this.verified.delete(token);
      return { ok: false, why: 'expired' };
    }
    return { ok: true, claims };
  }

  /** The claims of a token spelled and signed as this deployment does (remembered), or what is wrong with it. */
  private checkSignature(token: string): TokenClaims | { ok: false; why: TokenProblem } {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1' || !SEGMENT.test(parts[1]!) || !/^[A-Za-z0-9_-]{43}$/.test(parts[2]!)) {
      return { ok: false, why: 'malformed' };
    }
    const [, payload, signature] = parts as [string, string, string];
    const given = Buffer.from(signature, 'base64url');
    // One spelling per token: the last character's unused bits must be zero.
    if (given.toString('base64url') !== signature) return { ok: false, why: 'malformed' };
    const expected = Buffer.from(this.sign(payload), 'base64url');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, why: 'forged' };
    const body = Buffer.from(payload, 'base64url');
    if (body.toString('base64url') !== payload) return { ok: false, why: 'malformed' };
    let claims: TokenClaims;
    try {
      claims = JSON.parse(body.toString('utf8')) as TokenClaims;
    } catch {
      return { ok: false, why: 'malformed' };
    }
    if (!claims || typeof claims.exp !== 'number' || typeof claims.iat !== 'number' || typeof claims.account_id !== 'string'
      || typeof claims.kid !== 'string' || typeof claims.jti !== 'string' || (claims.user_id !== undefined && typeof claims.user_id !== 'string')) {
      return { ok: false, why: 'malformed' };
    }
    if (this.verified.size >= VERIFIED_KEPT) this.verified.delete(this.verified.keys().next().value!);
    // One object serves every request with this token: none may change it.
    this.verified.set(token, Object.freeze(claims));
    return claims;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(`v1.${payload}`).digest('base64url');
  }
}
