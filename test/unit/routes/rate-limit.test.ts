import { expect } from 'chai';
import { RateLimiter } from '../../../lib/limits.js';
import { clientKey, parseProxies } from '../../../lib/routes/rate-limit.js';

describe('the rate limiter', function () {
  it('gives each client a burst, then its rate', function () {
    let now = 0;
    const limiter = new RateLimiter(1, 2, { now: () => now, pruneEveryMs: 0 });
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).to.deep.equal([0, 0, 1000]);
    expect(limiter.take('b')).to.equal(0);
    now += 1000;
    expect(limiter.take('a')).to.equal(0);
  });

  it('keeps at most maxClients buckets, dropping the least recently used: 40,000 addresses cost a fixed amount', function () {
    const limiter = new RateLimiter(1, 2, { maxClients: 1000, pruneEveryMs: 0, now: () => 0 });
    limiter.take('busy');
    for (let i = 0; i < 40_000; i++) {
      limiter.take(`address:${i}`);
      if (i % 100 === 0) limiter.take('busy');
    }
    expect(limiter.size).to.equal(1000);
    // The client used all along kept its bucket (and its debt): still limited.
    expect(limiter.take('busy')).to.be.above(0);
  });

  it('prune() drops the buckets that refilled, and stops at the first that has not', function () {
    let now = 0;
    const limiter = new RateLimiter(1, 2, { now: () => now, pruneEveryMs: 0 });
    for (const c of ['old1', 'old2']) limiter.take(c);
    now = 5000;
    limiter.take('recent');
    now = 6000;
    limiter.prune();
    expect(limiter.size).to.equal(1);
    expect(limiter.take('recent')).to.equal(0);
  });

  it('counts an IPv6 client by its /64: a subscriber cannot take a bucket per address of its network', function () {
    expect(clientKey('2001:db8:1:2:3:4:5:6')).to.equal(clientKey('2001:db8:1:2::9'));
    expect(clientKey('2001:0db8:0001:0002::1')).to.equal('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:3::1')).not.to.equal(clientKey('2001:db8:1:2::1'));
    expect(clientKey('::1')).to.equal('0:0:0:0::/64');
    expect(clientKey('10.0.0.1')).to.equal('10.0.0.1');
    // One spelling per address: case, zero padding, zones and IPv4-mapped forms.
    for (const same of ['::FFFF:1.2.3.4', '0:0:0:0:0:ffff:1.2.3.4', '::ffff:102:304']) expect(clientKey(same), same).to.equal('1.2.3.4');
    expect(clientKey('2001:DB8:0001:0002::1')).to.equal(clientKey('2001:db8:1:2::1'));
    expect(clientKey('fe80::1%eth0')).to.equal('fe80:0:0:0::/64');
    expect(clientKey('::1:2:3:4:5.6.7.8')).to.equal('0:0:1:2::/64');
  });

  it('reads TRUSTED_PROXIES, naming what is not an address', function () {
    expect(parseProxies('127.0.0.1, ::1, ::ffff:10.0.0.1, 2001:DB8::0001')).to.deep.equal(['127.0.0.1', '::1', '10.0.0.1', '2001:db8::1']);
    expect(() => parseProxies('127.0.0.1,proxy.local')).to.throw(/proxy\.local/);
  });
});
