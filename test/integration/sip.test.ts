// A real SIP phone: sipp user agents call through Asterisk's PJSIP into
// Stasis(konami) and press the transfer code as RFC 4733 telephone events,
// the way a mobile carrier or SIP trunk delivers it. Alice (7001) calls Bob
// (7002) and transfers him to Mary (7600); konami dials PJSIP endpoints.
import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { assertNothingLeft, eventually, konamiBridges } from '../harness/asterisk.js';
import { startTestKonami } from '../harness/konami.js';
import { Phones } from '../harness/phones.js';
import { sandboxEnv } from '../harness/sandbox.js';
import { sipPort, Sipp, writeDtmf } from '../harness/sipp.js';

describe('A real SIP phone through PJSIP (sipp, RFC 4733 DTMF)', function () {
  this.timeout(60_000);
  let phones: Phones;
  let konami: Konami;
  let account: string;
  const running: Sipp[] = [];

  before(async function () {
    const env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    konami = await startTestKonami(env, { DIAL_TEMPLATE: 'PJSIP/{exten}' });
    account = (await konami.store.create('SIP phones')).account.id;
    await konami.store.setMetaflows(account, validateMetaflows({
      numbers: { 22: { module: 'resume' } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 20 } } },
    }, konami.modules));
  });

  after(async function () {
    for (const s of running) s.kill();
    await konami?.stop(1000);
    await phones?.stop();
  });

  /** Channel names (PJSIP/7002-...) per konami bridge: "main" for the call's, "consult" for a consultation. */
  async function picture(): Promise<Record<string, string[]>> {
    const names = new Map((await phones.ari.listChannels()).map((c) => [c.id, c.name.replace(/-[0-9a-f]+$/, '')]));
    const out: Array<[string, string[]]> = [];
    for (const b of await konamiBridges(phones.ari)) {
      out.push([b.name.endsWith('/consult') ? 'consult' : 'main', b.channels.map((c) => names.get(c) ?? c).sort()]);
    }
    return Object.fromEntries(out.sort(([x], [y]) => x.localeCompare(y)));
  }

  it('Alice presses *21 7600 # on her phone: Bob holds, Alice talks with Mary; Alice hangs up: Bob and Mary are connected', async function () {
    const sip = sipPort();
    writeDtmf('alice-dtmf', '*217600#');
    const bob = Sipp.start('bob', { scenario: 'answer.xml', port: sip + 12, service: '7002', pauseMs: 200 });
    const mary = Sipp.start('mary', { scenario: 'answer.xml', port: sip + 13, service: '7600', pauseMs: 1500 });
    running.push(bob, mary);
    await new Promise((r) => setTimeout(r, 500));
    for (const phone of [bob, mary]) expect(phone.running, `${phone.name}'s sipp is up:\n${phone.output}`).to.equal(true);
    const alice = Sipp.start('alice', {
      scenario: 'alice-transfers.xml', port: sip + 11, service: '7002', pauseMs: 7000,
      remote: `127.0.0.1:${sip}`, keys: { account },
    });
    running.push(alice);

    // Every distinct picture Asterisk shows, in order, until Bob and Mary are connected.
    const seen: string[] = [];
    const done = JSON.stringify({ main: ['PJSIP/7002', 'PJSIP/7600'] });
    await eventually(async () => {
      const p = JSON.stringify(await picture());
      if (seen.at(-1) !== p) seen.push(p);
      return p;
    }, (p) => p === done, 'Bob and Mary connected', 30_000, 25).catch((err: Error) => {
      throw new Error(`${err.message}\nseen: ${seen.join('\n      ')}`);
    });
    const wanted = [
      JSON.stringify({ main: ['PJSIP/7001', 'PJSIP/7002'] }),
      JSON.stringify({ consult: ['PJSIP/7001'], main: ['PJSIP/7002'] }),
      JSON.stringify({ consult: ['PJSIP/7001', 'PJSIP/7600'], main: ['PJSIP/7002'] }),
      done,
    ];
    expect(seen.filter((p) => wanted.includes(p)), 'Alice with Bob; Bob holds while Mary rings; Alice talks with Mary; Bob with Mary')
      .to.deep.equal(wanted);
    expect(konami.metrics.codesMatched.get({ module: 'transfer' }), 'the code arrived as RFC 4733 events').to.equal(1);
    expect(await alice.result(), `Alice's call went as scripted:\n${alice.output}`).to.equal(0);
    expect(konami.metrics.transfersEnded.get({ outcome: 'completed', cause: '' })).to.equal(1);

    const bobChannel = (await phones.ari.listChannels()).find((c) => c.name.startsWith('PJSIP/7002-'))!;
    await phones.ari.hangup(bobChannel.id);
    expect(await bob.result(), `Bob's phone got its BYE:\n${bob.output}`).to.equal(0);
    expect(await mary.result(), `Mary's phone got its BYE:\n${mary.output}`).to.equal(0);
    await assertNothingLeft(phones.ari);
  });
});
