import { once } from 'node:events';
import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { assertNothingLeft, eventually, konamiBridges } from '../harness/asterisk.js';
import { startTestKonami } from '../harness/konami.js';
import { Phones } from '../harness/phones.js';
import { sandbox, sandboxEnv } from '../harness/sandbox.js';

describe('Losing ARI', function () {
  this.timeout(60_000);

  it('Asterisk restarts: konami reports not ready, reconnects by itself, and takes calls again', async function () {
    const env = sandboxEnv();
    const konami: Konami = await startTestKonami(env);
    let phones: Phones | undefined;
    try {
      const ready = async () => (await fetch(`http://127.0.0.1:${konami.http.port}/readyz`)).status;
      expect(await ready()).to.equal(200);
      const down = once(konami.ari, 'disconnected');
      sandbox('stop');
      await down;
      expect(await ready()).to.equal(503);
      const up = once(konami.ari, 'connected');
      sandbox('start');
      await up;
      expect(await ready()).to.equal(200);
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
});
