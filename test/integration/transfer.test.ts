// Attended, partial and cancelled transfers by star code on the real Asterisk.
// Alice (1001) calls Bob; Mary and Carol are the targets. Every assertion
// reads what Asterisk reports: bridge members, the MOH announcer Asterisk puts
// in a held bridge, playbacks on channels, channel states and hang-up causes.
import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { Cause } from '../../lib/stasis/causes.js';
import { eventually, konamiBridges, mohPlaysIn } from '../harness/asterisk.js';
import { expectBridges as expectBridgesOf, side } from '../harness/bridges.js';
import { startTestKonami } from '../harness/konami.js';
import { PlaybackWatch } from '../harness/playbacks.js';
import { Phones, type Phone } from '../harness/phones.js';
import { sandboxEnv } from '../harness/sandbox.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Transfers by star code on the real Asterisk', function () {
  this.timeout(45_000);
  let phones: Phones;
  let konami: Konami;
  let watch: PlaybackWatch;
  let account: string;
  let n = 0;

  before(async function () {
    const env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    // The operator's route to the sandbox's fixed behaviours (busy, ring...), allowed to this account only.
    konami = await startTestKonami(env, { DIAL_ROUTES: 'fixed=Local/{target}@fixed/n' }, {});
    watch = new PlaybackWatch(konami.ari, phones.ari);
    account = (await konami.store.create('Transfers')).account.id;
    await konami.store.setDialRoutes(account, ['default', 'fixed']);
    await konami.store.setMetaflows(account, validateMetaflows({
      digit_timeout: 1500,
      numbers: {
        22: { module: 'resume' },
        24: { module: 'transfer' },
      },
      patterns: {
        '21(\\d+)': { module: 'transfer', data: { ring_timeout: 6, recall_attempts: 1, recall_delay: 1 } },
        '23(\\d+)': { module: 'transfer', data: { dial_route: 'fixed' } },
      },
    }, konami.modules, { dialRoutes: ['default', 'fixed'] }));
  });

  after(async function () {
    await konami?.stop(1000);
    await phones?.stop();
  });

  afterEach(async function () {
    watch.clear();
    await phones.checkNothingLeftAndReset();
  });

  /** A fresh number per test, so calls of different tests never meet. */
  const number = (base: number) => `${base + ++n * 10}`;

  async function connect(): Promise<{ alice: Phone; bob: Phone; callId: string }> {
    const to = number(5000);
    const alice = await phones.call(to, { account, from: { number: '1001', name: 'Alice' } });
    const bob = await phones.incoming(to);
    await bob.answer();
    await alice.waitState('Up');
    await eventually(async () => konami.app.callOf(alice.peerId!)?.phase, (p) => p === 'bridged', 'the call to be bridged');
    return { alice, bob, callId: alice.peerId! };
  }

  const expectBridges = (callId: string, want: Record<string, string[]>, what: string) => expectBridgesOf(phones.ari, callId, want, what);

  async function mainBridgeId(callId: string): Promise<string> {
    const b = (await konamiBridges(phones.ari)).find((x) => x.name === `konami/${callId}`);
    if (!b) throw new Error('no main bridge');
    return b.id;
  }

  /** Alice asks for a transfer to a new number and Mary's phone rings. */
  async function transferTo(by: Phone, code = '21'): Promise<{ mary: Phone; target: string }> {
    const target = number(2600);
    await by.press(`*${code}${target}#`);
    const mary = await phones.incoming(target);
    await mary.ring();
    return { mary, target };
  }

  it('1. attended: Bob holds with music, Alice hears ringing, talks with Mary; Alice hangs up: Bob and Mary are connected', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    const shown = mary.events.find((e) => e.type === 'StasisStart');
    expect(shown && 'channel' in shown ? shown.channel.caller : undefined, "Mary's phone shows Alice").to.deep.equal({ name: 'Alice', number: '1001' });
    await expectBridges(callId, { main: [side(bob)], consult: [callId] }, 'Bob alone in the call bridge, Alice in consultation');
    const main = await mainBridgeId(callId);
    await eventually(async () => mohPlaysIn(main), (v) => v, 'music on hold in Bob\'s bridge');
    await eventually(() => watch.playing(callId), (p) => p.includes('tone:ring'), 'Alice to hear ringing');
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk, Bob holds');
    expect(await watch.playing(callId), 'Alice no longer hears ringing').to.deep.equal([]);
    expect(mohPlaysIn(main), 'Bob still holds with music').to.equal(true);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    expect(mohPlaysIn(main), "Bob's music stopped").to.equal(false);
    expect(bob.gone || mary.gone).to.equal(false);
    await mary.hangup();
    expect(await bob.waitHangup()).to.equal(Cause.NORMAL_CLEARING);
    expect(konami.metrics.transfersEnded.get({ outcome: 'completed', cause: '' })).to.be.at.least(1);
    expect(konami.metrics.codesMatched.get({ module: 'transfer' })).to.be.at.least(1);
  });

  it('2. partial: Alice hangs up while Mary rings; Bob hears ringing instead of music and is connected when Mary answers', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    const main = await mainBridgeId(callId);
    await eventually(async () => mohPlaysIn(main), (v) => v, 'music on hold in Bob\'s bridge');
    await alice.hangup();
    await eventually(() => watch.playing(side(bob)), (p) => p.includes('tone:ring'), 'Bob to hear ringing');
    expect(mohPlaysIn(main), 'no more music for Bob').to.equal(false);
    await expectBridges(callId, { main: [side(bob)] }, 'Bob alone, the consultation gone');
    await mary.answer();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    expect(await watch.playing(side(bob)), 'Bob no longer hears ringing').to.deep.equal([]);
    await bob.hangup();
    await mary.waitHangup();
  });

  it('3a. partial, then Mary rejects: Alice is called back and, answering, is with Bob again', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await alice.hangup();
    await eventually(() => watch.playing(side(bob)), (p) => p.includes('tone:ring'), 'Bob to hear ringing');
    await mary.hangup(Cause.CALL_REJECTED);
    const recall = await phones.incoming('1001', 8000);
    await recall.answer();
    await expectBridges(callId, { main: [side(bob), side(recall)] }, 'Bob with Alice called back');
    expect(await watch.playing(side(bob))).to.deep.equal([]);
    await recall.hangup();
    await bob.waitHangup();
  });

  it('3b. partial, then Mary and the recall fail: Bob hears a failure tone and is hung up, never left holding', async function () {
    const { alice, bob } = await connect();
    const { mary } = await transferTo(alice);
    await alice.hangup();
    await eventually(() => watch.playing(side(bob)), (p) => p.includes('tone:ring'), 'Bob to hear ringing');
    await mary.hangup(Cause.USER_BUSY);
    const recall = await phones.incoming('1001', 8000);
    await recall.hangup(Cause.CALL_REJECTED);
    await eventually(() => watch.playing(side(bob)), (p) => p.includes('tone:congestion'), 'Bob to hear the failure tone');
    expect(await bob.waitHangup(6000)).to.be.a('number');
  });

  for (const [how, fail] of [
    ['is busy', (m: Phone) => m.hangup(Cause.USER_BUSY)],
    ['rejects', (m: Phone) => m.hangup(Cause.CALL_REJECTED)],
  ] as const) {
    it(`4. Mary ${how} while Alice waits: Alice is back with Bob within a second, the music stops, Alice hears a failure tone`, async function () {
      const { alice, bob, callId } = await connect();
      const { mary } = await transferTo(alice);
      const main = await mainBridgeId(callId);
      await eventually(async () => mohPlaysIn(main), (v) => v, 'music on hold in Bob\'s bridge');
      await fail(mary);
      const t0 = Date.now();
      await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
      expect(Date.now() - t0, 'ms to reconnect').to.be.below(1000);
      expect(mohPlaysIn(main)).to.equal(false);
      expect(watch.history(callId)).to.include('sound:beeperr');
      await alice.hangup();
      await bob.waitHangup();
    });
  }

  it('4. Mary does not answer within the ring timeout: Alice is back with Bob', async function () {
    const { alice, bob, callId } = await connect();
    await transferTo(alice);
    await sleep(5000);
    await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob after the 6 s ring timeout');
    expect(watch.history(callId)).to.include('sound:beeperr');
    await alice.hangup();
    await bob.waitHangup();
  });

  it('4. no such extension: Alice is back with Bob at once', async function () {
    const { alice, bob, callId } = await connect();
    await alice.press('*23777#');
    await eventually(async () => watch.history(callId), (h) => h.includes('sound:beeperr'), 'Alice to hear the failure tone');
    await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    await alice.hangup();
    await bob.waitHangup();
  });

  it('5. *22 while Mary rings: Mary is hung up at once and Alice is back with Bob', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await alice.press('*22');
    await mary.waitHangup(2000);
    await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    await alice.hangup();
    await bob.waitHangup();
  });

  it('5. *22 after Mary answered: Mary is hung up and Alice is back with Bob; *22 again does nothing harmful', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'consulting');
    await alice.press('*22');
    await mary.waitHangup(2000);
    await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    await alice.press('*22');
    await sleep(800);
    await expectBridges(callId, { main: [callId, side(bob)] }, 'still Alice with Bob');
    expect(bob.heard, 'Bob heard none of the codes').to.equal('');
    await bob.hangup();
    await alice.waitHangup();
  });

  it('6. Mary hangs up during the consultation: Alice is back with Bob', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'consulting');
    await mary.hangup();
    await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    const main = await mainBridgeId(callId);
    expect(mohPlaysIn(main)).to.equal(false);
    await alice.hangup();
    await bob.waitHangup();
  });

  it('7. Bob hangs up during the consultation: Alice and Mary go on as a normal call', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'consulting');
    await bob.hangup();
    await eventually(async () => (await konamiBridges(phones.ari)).map((b) => [...b.channels].sort()),
      (b) => JSON.stringify(b) === JSON.stringify([[callId, side(mary)].sort()]), 'one bridge: Alice and Mary');
    await sleep(500);
    expect(alice.gone || mary.gone).to.equal(false);
    await alice.hangup();
    await mary.waitHangup();
  });

  it('7. Bob hangs up while Mary rings: Alice keeps waiting and talks with Mary when she answers', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await bob.hangup();
    await sleep(500);
    expect(alice.gone).to.equal(false);
    await eventually(() => watch.playing(callId), (p) => p.includes('tone:ring'), 'Alice still hears ringing');
    await mary.answer();
    await eventually(async () => (await konamiBridges(phones.ari)).map((b) => [...b.channels].sort()),
      (b) => JSON.stringify(b) === JSON.stringify([[callId, side(mary)].sort()]), 'one bridge: Alice and Mary');
    await mary.hangup();
    await alice.waitHangup();
  });

  it('8. Bob transfers Alice: Alice holds, Bob consults Mary, Bob hangs up: Alice and Mary are connected', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(bob);
    await expectBridges(callId, { main: [callId], consult: [side(bob)] }, 'Alice alone holding, Bob in consultation');
    await mary.answer();
    await expectBridges(callId, { main: [callId], consult: [side(bob), side(mary)] }, 'Bob and Mary talk');
    await bob.hangup();
    await expectBridges(callId, { main: [callId, side(mary)] }, 'Alice and Mary connected');
    await alice.hangup();
    await mary.waitHangup();
  });

  it('9. chained: after Bob and Mary were connected, Mary transfers Bob onward to Carol', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transferTo(alice);
    await mary.answer();
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    const { mary: carol } = await transferTo(mary);
    await carol.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [side(mary), side(carol)] }, 'Mary consults Carol');
    await mary.hangup();
    await expectBridges(callId, { main: [side(bob), side(carol)] }, 'Bob and Carol connected');
    await carol.hangup();
    await bob.waitHangup();
  });

  it('10. refusals: a second *21 in progress, an empty target, Alice\'s own number: a tone, and the call goes on untouched', async function () {
    const { alice, bob, callId } = await connect();
    await alice.press('*211001#');
    await sleep(600);
    await expectBridges(callId, { main: [callId, side(bob)] }, 'own number refused: still Alice with Bob');
    await alice.press('*24');
    await sleep(600);
    await expectBridges(callId, { main: [callId, side(bob)] }, 'empty target refused');
    expect(watch.history(callId).filter((m) => m === 'sound:beeperr')).to.have.length(2);
    const { mary, target } = await transferTo(alice);
    await alice.press(`*21${target}9#`);
    await sleep(600);
    expect(watch.history(callId).filter((m) => m === 'sound:beeperr')).to.have.length(3);
    expect(phones.pending(`${target}9`), 'no second target rang').to.equal(0);
    expect(mary.gone).to.equal(false);
    await mary.answer();
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'the first transfer completes');
    expect(bob.heard).to.equal('');
    await bob.hangup();
    await mary.waitHangup();
  });
});
