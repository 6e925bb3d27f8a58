import { once } from 'node:events';
import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { assertNothingLeft, eventually, konamiBridges, mohPlaysIn } from '../harness/asterisk.js';
import { aliceCallsBob, expectBridges, side } from '../harness/bridges.js';
import { startTestKonami } from '../harness/konami.js';
import { Phones } from '../harness/phones.js';
import { keptCalls } from '../harness/process.js';
import { apiToken } from '../harness/process.js';
import { CuttableProxy } from '../harness/proxy.js';
import { sandbox, sandboxEnv } from '../harness/sandbox.js';

describe('Losing ARI', function () {
  this.timeout(60_000);

  it('Asterisk restarts during a call: konami reports not ready, reconnects by itself, forgets the lost call, and takes calls again', async function () {
    const env = sandboxEnv();
    const konami: Konami = await startTestKonami(env);
    let phones: Phones | undefined = await Phones.connect(env);
    try {
      const ready = async () => (await fetch(`http://127.0.0.1:${konami.http.port}/readyz`)).status;
      expect(await ready()).to.equal(200);
      const lost = await phones.call('3001', { account: 'acme' });
      await (await phones.incoming('3001')).answer();
      await lost.waitState('Up');
      await eventually(() => konamiBridges(phones!.ari), (b) => b.length === 1 && b[0]!.channels.length === 2, 'the call to be bridged');
      expect(konami.app.activeCalls.size).to.equal(1);
      await phones.stop();
      const down = once(konami.ari, 'disconnected');
      sandbox('stop');
      await down;
      expect(await ready()).to.equal(503);
      const up = once(konami.ari, 'connected');
      sandbox('start');
      await up;
      await eventually(ready, (s) => s === 200, 'konami ready again once reconciled', 10_000);
      expect(konami.app.activeCalls.size, 'the call Asterisk lost is forgotten').to.equal(0);
      const metrics = await (await fetch(`http://127.0.0.1:${konami.http.port}/metrics`)).text();
      expect(metrics).to.match(/^konami_ari_reconnects_total 1$/m);

      phones = await Phones.connect(env);
      const alice = await phones.call('3001', { account: 'acme' });
      const bob = await phones.incoming('3001');
      await bob.answer();
      await alice.waitState('Up');
      await eventually(() => konamiBridges(phones!.ari), (b) => b.length === 1 && b[0]!.channels.length === 2, 'the call to be bridged');
      await alice.hangup();
      await bob.waitHangup();
      await assertNothingLeft(phones.ari);
    } finally {
      await phones?.reset().catch(() => undefined);
      await phones?.stop();
      await konami.stop(1000);
    }
  });

  it('the ARI connection drops during a consultation and Alice hangs up meanwhile: not ready, then reconnected, and Bob and Mary are connected', async function () {
    const env = sandboxEnv();
    const proxy = await CuttableProxy.start(env.url);
    const konami: Konami = await startTestKonami(env, { ARI_URL: proxy.url });
    const phones = await Phones.connect(env);
    try {
      const created = await konami.store.create('Connection loss');
      const account = created.account.id;
      const base = `http://127.0.0.1:${konami.http.port}`;
      const token = await apiToken(base, created.apiKey);
      await konami.store.setMetaflows(account, validateMetaflows({
        numbers: { 22: { module: 'resume' } }, patterns: { '21(\\d+)': { module: 'transfer' } },
      }, konami.modules));
      const ready = async () => (await fetch(`http://127.0.0.1:${konami.http.port}/readyz`)).status;
      const { alice, bob, callId } = await aliceCallsBob(phones, '3101', account);
      await alice.press('*212701#');
      const mary = await phones.incoming('2701');
      await mary.answer();
      await expectBridges(phones.ari, callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk, Bob holds');

      const down = once(konami.ari, 'disconnected');
      await proxy.cut();
      await down;
      expect(await ready(), 'not ready while ARI is out of reach').to.equal(503);
      const refused = await fetch(`${base}/v1/accounts/${account}/channels/${callId}`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': token },
        body: JSON.stringify({ data: { action: 'cancel' } }),
      });
      expect(refused.status, 'an API action is refused while it could not reach Asterisk').to.equal(503);
      await alice.hangup();
      await new Promise((r) => setTimeout(r, 1500));
      expect(konami.app.callOf(callId)?.transfer?.state, 'konami has not seen Alice go').to.equal('consulting');

      const up = once(konami.ari, 'connected');
      await proxy.restore();
      await up;
      await expectBridges(phones.ari, callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected after the reconnection');
      const main = (await konamiBridges(phones.ari)).find((b) => b.name === `konami/${callId}`)!;
      expect(mohPlaysIn(main.id), "Bob's music stopped").to.equal(false);
      await eventually(ready, (s) => s === 200, 'ready again');
      await bob.hangup();
      await mary.waitHangup();
      await assertNothingLeft(phones.ari);
      await eventually(() => keptCalls(konami.config.dataDir), (f) => f.length === 0, 'no call state kept');
    } finally {
      await phones.reset().catch(() => undefined);
      await phones.stop();
      await konami.stop(1000);
      await proxy.stop();
    }
  });
});
