import { expect } from 'chai';
import { TokenSigner } from '../../../lib/routes/tokens.js';

const ACCOUNT = '0123456789abcdef0123456789abcdef';

describe('auth tokens', function () {
  const secret = Buffer.from('s'.repeat(32));

  it('a token issued by one instance is valid at another sharing the secret, until it expires', function () {
    let now = 1_800_000_000_000;
    const one = new TokenSigner(secret, 60, () => now);
    const two = new TokenSigner(Buffer.from(secret), 60, () => now);
    const { token, expiresAt } = one.issue(ACCOUNT, 'key1');
    expect(expiresAt.getTime()).to.equal(now + 60_000);
    const check = two.verify(token);
    expect(check.ok && check.claims).to.deep.include({ account_id: ACCOUNT, kid: 'key1' });
    now += 60_000;
    expect(two.verify(token)).to.deep.equal({ ok: false, why: 'expired' });
  });

  it('refuses a token whose payload was changed, or that another secret signed', function () {
    const signer = new TokenSigner(secret, 60);
    const [v, payload, sig] = signer.issue('a'.repeat(32), 'k').token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const changed = Buffer.from(JSON.stringify({ ...claims, account_id: 'b'.repeat(32) })).toString('base64url');
    expect(signer.verify(`${v}.${changed}.${sig}`)).to.deep.equal({ ok: false, why: 'forged' });
    const other = new TokenSigner(Buffer.from('t'.repeat(32)), 60).issue('a'.repeat(32), 'k').token;
    expect(signer.verify(other)).to.deep.equal({ ok: false, why: 'forged' });
    for (const bad of ['', 'v1', 'v2.x.y', 'v1.a.b', `v1.${payload}`]) expect(signer.verify(bad).ok, bad).to.equal(false);
  });

  it('each token has one spelling: other padding bits in the signature or the payload are refused', function () {
    const signer = new TokenSigner(secret, 60);
    for (let n = 0; n < 20; n++) {
      const token = signer.issue(ACCOUNT, `k${n}`).token;
      const [v, payload, sig] = token.split('.') as [string, string, string];
      const spellings = [token];
      // The 43rd character of a 32-byte signature carries 2 unused bits: 3 other characters decode to the same bytes.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet.indexOf(sig.at(-1)!);
      for (let bits = 1; bits < 4; bits++) spellings.push(`${v}.${payload}.${sig.slice(0, -1)}${alphabet[last ^ bits]}`);
      if (payload.length % 4 !== 0) {
        const p = alphabet.indexOf(payload.at(-1)!);
        spellings.push(`${v}.${payload.slice(0, -1)}${alphabet[p ^ 1]}.${sig}`);
      }
      expect(spellings.filter((t) => signer.verify(t).ok), token).to.deep.equal([token]);
    }
  });

  it('refuses a token living longer than the TTL, or issued in the future, even when signed with the secret', function () {
    const now = 1_800_000_000_000;
    const long = new TokenSigner(secret, 7200, () => now).issue(ACCOUNT, 'k').token;
    expect(new TokenSigner(secret, 3600, () => now).verify(long)).to.deep.equal({ ok: false, why: 'forged' });
    const ahead = new TokenSigner(secret, 60, () => now + 3_600_000).issue(ACCOUNT, 'k').token;
    expect(new TokenSigner(secret, 60, () => now).verify(ahead)).to.deep.equal({ ok: false, why: 'forged' });
  });

  it('a token checked once is remembered for itself only: its expiry still applies, and no other spelling rides on it', function () {
    let now = 1_800_000_000_000;
    const signer = new TokenSigner(secret, 60, () => now);
    const { token } = signer.issue(ACCOUNT, 'k');
    expect(signer.verify(token).ok).to.equal(true);
    expect(signer.verify(token).ok).to.equal(true);
    const [v, payload, sig] = token.split('.') as [string, string, string];
    const flipped = `${v}.${payload}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'Q' : 'A'}`;
    expect(signer.verify(flipped).ok).to.equal(false);
    expect(signer.verify(`${token}.`).ok).to.equal(false);
    now += 60_000;
    expect(signer.verify(token)).to.deep.equal({ ok: false, why: 'expired' });
  });
});
