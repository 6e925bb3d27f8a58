import { expect } from 'chai';
import { TokenSigner } from '../../../lib/routes/tokens.js';

describe('auth tokens', function () {
  const secret = Buffer.from('s'.repeat(32));

  it('a token issued by one instance is valid at another sharing the secret, until it expires', function () {
    let now = 1_800_000_000_000;
    const one = new TokenSigner(secret, 60, () => now);
    const two = new TokenSigner(Buffer.from(secret), 60, () => now);
    const { token, expiresAt } = one.issue('0123456789abcdef0123456789abcdef');
    expect(expiresAt.getTime()).to.equal(now + 60_000);
    const check = two.verify(token);
    expect(check.ok && check.claims.account_id).to.equal('0123456789abcdef0123456789abcdef');
    now += 60_000;
    expect(two.verify(token)).to.deep.equal({ ok: false, why: 'expired' });
  });

  it('refuses a token whose payload was changed, or that another secret signed', function () {
    const signer = new TokenSigner(secret, 60);
    const [v, payload, sig] = signer.issue('a'.repeat(32)).token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const changed = Buffer.from(JSON.stringify({ ...claims, account_id: 'b'.repeat(32) })).toString('base64url');
    expect(signer.verify(`${v}.${changed}.${sig}`)).to.deep.equal({ ok: false, why: 'forged' });
    const other = new TokenSigner(Buffer.from('t'.repeat(32)), 60).issue('a'.repeat(32)).token;
    expect(signer.verify(other)).to.deep.equal({ ok: false, why: 'forged' });
    for (const bad of ['', 'v1', 'v2.x.y', 'v1.a.b', `v1.${payload}`]) expect(signer.verify(bad).ok, bad).to.equal(false);
  });
});
