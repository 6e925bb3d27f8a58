// The attended-transfer state machine (lib/stasis/transfer.ts), driven through
// the real StasisApp and Call against the in-memory fake ARI, with fake timers.
//
// Alice (1001) called Bob (2001) and they are bridged; Alice presses *21<n>#
// to transfer Bob to Mary, *22 to take Bob back. The fake never sends events
// itself: every ordering below, races included, is staged by the test. When a
// party hangs up, the test updates the fake as Asterisk would (the channel
// leaves its bridge, its playbacks stop, commands on it fail with 404) and
// then delivers ChannelDestroyed; when konami hangs a channel up, the test
// confirms it with ChannelDestroyed only where the scenario needs it.
import { expect } from 'chai';
import sinon from 'sinon';
import { silentLogger } from '../../../lib/log.js';
import { NO_METRICS } from '../../../lib/metrics.js';
import { StasisApp } from '../../../lib/stasis/app.js';
import type { ChannelSnapshot } from '../../../lib/stasis/ari-types.js';
import { RateLimiter } from '../../../lib/limits.js';
import type { Call, TransferLimits } from '../../../lib/stasis/call.js';
import { Cause } from '../../../lib/stasis/causes.js';
import { CallEvents, type ChannelEvent } from '../../../lib/stasis/call-events.js';
import { CallControl } from '../../../lib/stasis/control.js';
import { ringbackMedia, transferOptions, type TransferData } from '../../../lib/stasis/modules/transfer.js';
import type { TransferSettings } from '../../../lib/stasis/transfer.js';
import { transferCodes } from '../../fakes/transfer-codes.js';
import { ev, FakeAri, type Command } from '../../fakes/fake-ari.js';
import { fixedRoutes } from '../../fakes/dial-routes.js';

const RING = 'tone:ring';
const BEEPERR = 'sound:beeperr';
const CONGESTION = 'tone:congestion';
const FAREWELL_MS = 2000;

describe('attended transfer: the state machine through a call (fake ARI, fake timers)', function () {
  // *21<n>: one recall; *23<n>: two recalls 5 s apart; *22: resume.
  const { registry, matcher } = transferCodes();

  let clock: sinon.SinonFakeTimers;
  let ari: FakeAri;
  let app: StasisApp;
  let call: Call;
  let alice: ChannelSnapshot;
  let bob: ChannelSnapshot;
  let mainBridge: string;
  /** Channels whose ChannelDestroyed the test has delivered. */
  let destroyed: Set<string>;
  /** The dial routes the operator allows each account. */
  let allowedRoutes: Record<string, string[]>;
  /** The operator's limits on transfers started (generous unless a test says otherwise). */
  let limits: TransferLimits;
  /** Transfer set-up times konami reported (final digit to target dialled, ms). */
  let setUps: number[];

  const settle = async () => {
    for (let i = 0; i < 6; i++) {
      for (const c of app.activeCalls.values()) await c.settled();
      await clock.tickAsync(0);
    }
  };

  /** Lets promises run without waiting for the call's queue (which an ARI step on hold blocks). */
  const flush = async () => {
    for (let i = 0; i < 10; i++) await clock.tickAsync(0);
  };

  beforeEach(async function () {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    ari = new FakeAri();
    destroyed = new Set();
    allowedRoutes = { acme: ['default', 'pstn'] };
    limits = { perCall: 100, perAccount: new RateLimiter(1000, 1000, { pruneEveryMs: 0 }) };
    setUps = [];
    app = new StasisApp(ari, {
      metrics: { ...NO_METRICS, transferSetUp: (ms) => setUps.push(ms) },
      app: 'konami', dialRoutes: fixedRoutes({ default: 'Local/{target}@phones/n', pstn: 'PJSIP/{target}@trunk' }, allowedRoutes),
      transferLimits: limits,
      // The fake's callers are no devices: Alice is called back on her number, as with RECALL_CALLERS=number.
      recallCallers: 'number', ringTimeout: 25, leftStasisGraceMs: 50, farewellMs: FAREWELL_MS,
      features: { matcher: (account) => (account === 'acme' ? matcher : undefined), module: (n) => registry.get(n) },
    }, silentLogger());
    alice = ari.addChannel_('alice', { state: 'Ring', caller: { name: 'Alice', number: '1001' }, exten: '2001' });
    app.handle(ev.stasisStart(alice, ['account=acme']));
    await settle();
    bob = channel(ari.ops('createChannel')[0]!);
    app.handle(ev.stasisStart(bob, ['leg=b', 'call=alice']));
    app.handle(ev.state(bob, 'Ringing'));
    app.handle(ev.state(bob, 'Up'));
    await settle();
    call = app.activeCalls.get('alice')!;
    mainBridge = call.bridgeId;
    expect(call.phase, 'Alice and Bob are bridged before any transfer').to.equal('bridged');
    expect(members(mainBridge)).to.deep.equal(sorted(['alice', bob.id]));
  });

  afterEach(function () {
    clock.restore();
  });

  // ---- the parties ----

  function channel(create: Command): ChannelSnapshot {
    return ari.channels.get(create.target)!.snapshot;
  }

  /** The channels konami created with `leg=<kind>`, in order. */
  function created(kind: 'target' | 'recall'): Command[] {
    return ari.ops('createChannel').filter((c) => String(c.args['appArgs']).startsWith(`leg=${kind},`));
  }

  /** A party hangs up: Asterisk drops it from its bridge and playbacks, then reports ChannelDestroyed. */
  function hangsUp(party: ChannelSnapshot, cause: number = Cause.NORMAL_CLEARING): void {
    const c = ari.channels.get(party.id)!;
    if (c.hungUp === undefined) {
      c.hungUp = cause;
      for (const [id, p] of ari.playbacks) if (p.target_uri === `channel:${party.id}`) ari.playbacks.delete(id);
      for (const b of ari.bridges.values()) b.snapshot.channels = b.snapshot.channels.filter((x) => x !== party.id);
    }
    destroyed.add(party.id);
    app.handle(ev.destroyed(party, cause));
  }

  /** Asterisk confirms (ChannelDestroyed) every channel konami hung up. */
  async function confirmHangups(): Promise<void> {
    for (const [id, c] of ari.channels) {
      if (c.hungUp !== undefined && !destroyed.has(id)) hangsUp(c.snapshot, c.hungUp);
    }
    await settle();
  }

  /** Whoever is still up hangs up, and every hang-up is confirmed. */
  async function everyoneHangsUp(): Promise<void> {
    for (const [id, c] of ari.channels) if (!destroyed.has(id)) hangsUp(c.snapshot, c.hungUp ?? Cause.NORMAL_CLEARING);
    await settle();
  }

  /** The call is forgotten, with no channel, bridge or timer left behind. */
  function expectNothingLeft(): void {
    expect(app.activeCalls.size, 'the call is over').to.equal(0);
    expect([...ari.bridges.keys()], 'no bridge is left').to.deep.equal([]);
    expect(ari.liveChannels(), 'no channel is left up').to.deep.equal([]);
    expect(clock.countTimers(), 'no timer is left').to.equal(0);
  }

  async function press(who: ChannelSnapshot, digits: string): Promise<void> {
    for (const d of digits) {
      app.handle(ev.dtmf(who, d));
      await settle();
    }
  }

  /** Alice (or `by`) presses *<code><number># and Mary's channel enters Stasis and rings. */
  async function transferTo(number = '2600', code = '21', by: ChannelSnapshot = alice): Promise<ChannelSnapshot> {
    const before = created('target').length;
    await press(by, `*${code}${number}#`);
    const made = created('target');
    expect(made, `a target channel is created for *${code}${number}# (${where()})`).to.have.length(before + 1);
    const mary = channel(made.at(-1)!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    app.handle(ev.state(mary, 'Ringing'));
    await settle();
    return mary;
  }

  async function answers(party: ChannelSnapshot): Promise<void> {
    app.handle(ev.state(party, 'Up'));
    await settle();
  }

  /** The recall channel konami created (the latest), after it enters Stasis. */
  async function recallRings(): Promise<ChannelSnapshot> {
    const recall = channel(created('recall').at(-1)!);
    app.handle(ev.stasisStart(recall, ['leg=recall', 'call=alice']));
    app.handle(ev.state(recall, 'Ringing'));
    await settle();
    return recall;
  }

  // ---- what the parties hear and where they are ----

  function sorted(ids: string[]): string[] {
    return [...ids].sort();
  }

  function members(bridgeId: string): string[] | undefined {
    const b = ari.bridges.get(bridgeId);
    return b ? sorted(b.snapshot.channels) : undefined;
  }

  function mohIn(bridgeId: string): boolean {
    return ari.bridges.get(bridgeId)?.moh ?? false;
  }

  /** The consultation bridge of the latest transfer (it may be destroyed by now). */
  function consultBridge(): string {
    const made = ari.ops('createBridge').filter((c) => String(c.args['name']).endsWith('/consult'));
    expect(made, 'a consultation bridge was created').to.not.have.length(0);
    return made.at(-1)!.target;
  }

  function playsTo(party: ChannelSnapshot): unknown[] {
    return ari.ops('play').filter((c) => c.target === party.id).map((c) => c.args['media']);
  }

  /** The call's state, for assertion messages. */
  function where(): string {
    return `call ${call.phase}, transfer ${call.transfer?.state ?? 'none'}`;
  }

  // ---- 1. the attended transfer ----

  it('attended: Bob holds with music, Alice hears ringing, talks with Mary; Alice hangs up and Bob talks with Mary', async function () {
    const mary = await transferTo('2600');
    const consult = consultBridge();
    const target = created('target')[0]!;
    expect(target.args, 'Mary is called through the dial template, from Alice, for this call').to.include({
      endpoint: 'Local/2600@phones/n', app: 'konami', appArgs: 'leg=target,call=alice', originator: 'alice',
    });
    expect(target.args['variables'], "Mary's phone shows Alice").to.deep.include({ 'CALLERID(num)': '1001', 'CALLERID(name)': 'Alice' });
    expect(ari.ops('dial').filter((c) => c.target === mary.id).map((c) => c.args), 'Mary rings for the code\'s ring timeout')
      .to.deep.equal([{ caller: 'alice', timeout: 20 }]);
    expect(members(mainBridge), `Bob alone in the call's bridge (${where()}, after *212600#)`).to.deep.equal([bob.id]);
    expect(mohIn(mainBridge), `Bob hears music on hold (${where()})`).to.equal(true);
    expect(members(consult), `Alice waits in the consultation bridge (${where()})`).to.deep.equal(['alice']);
    expect(ari.playing('alice'), `Alice hears ringing (${where()})`).to.deep.equal([RING]);
    expect(ari.channels.get(bob.id)!.dtmfSent, 'Bob heard none of the code').to.equal('');

    await answers(mary);
    expect(members(consult), `Alice and Mary talk (${where()}, after Mary answered)`).to.deep.equal(sorted(['alice', mary.id]));
    expect(ari.playing('alice'), `Alice's ringing stopped (${where()}, after Mary answered)`).to.deep.equal([]);
    expect(mohIn(mainBridge), `Bob still holds with music (${where()}, after Mary answered)`).to.equal(true);

    hangsUp(alice);
    await settle();
    expect(members(mainBridge), `Bob and Mary in the call's bridge (${where()}, after Alice hung up)`).to.deep.equal(sorted([bob.id, mary.id]));
    expect(mohIn(mainBridge), `Bob's music stopped (${where()}, after Alice hung up)`).to.equal(false);
    expect(ari.bridges.has(consult), `the consultation bridge is destroyed (${where()})`).to.equal(false);
    expect(call.phase, 'the call goes on').to.equal('bridged');
    expect(call.a?.id, 'Mary takes Alice\'s place as party a').to.equal(mary.id);
    expect(call.b?.id, 'Bob stays party b').to.equal(bob.id);
    expect(call.transfer).to.equal(undefined);
    expect(call.lastTransfer?.outcome).to.equal('completed');
    expect(ari.channels.get(bob.id)!.hungUp).to.equal(undefined);
    expect(ari.channels.get(mary.id)!.hungUp).to.equal(undefined);

    hangsUp(mary);
    await settle();
    expect(ari.channels.get(bob.id)!.hungUp, 'Mary hung up: Bob is hung up').to.equal(Cause.NORMAL_CLEARING);
    await confirmHangups();
    expectNothingLeft();
  });

  // ---- 2-4. races between two events with no settling in between ----

  for (const order of [['answer', 'hangup'], ['hangup', 'answer']] as const) {
    it(`Mary answers as Alice hangs up (${order.join(' then ')}): Bob and Mary are connected, no music, no ringing`, async function () {
      const mary = await transferTo();
      const consult = consultBridge();
      for (const what of order) {
        if (what === 'answer') app.handle(ev.state(mary, 'Up'));
        else hangsUp(alice);
      }
      await settle();
      const after = `${where()}, after ${order.join(' then ')}`;
      expect(members(mainBridge), `Bob and Mary in the call's bridge (${after})`).to.deep.equal(sorted([bob.id, mary.id]));
      expect(mohIn(mainBridge), `no music for Bob (${after})`).to.equal(false);
      expect(ari.playing(bob.id), `Bob hears no ringing (${after})`).to.deep.equal([]);
      expect(ari.bridges.has(consult), `the consultation bridge is gone (${after})`).to.equal(false);
      expect(call.lastTransfer?.outcome, after).to.equal('completed');
      expect(call.phase, after).to.equal('bridged');
      await everyoneHangsUp();
      expectNothingLeft();
    });
  }

  for (const order of [['bob', 'alice'], ['alice', 'bob']] as const) {
    it(`Bob and Alice hang up together during the consultation (${order.join(' then ')}): Mary is hung up and nothing is left`, async function () {
      const mary = await transferTo();
      await answers(mary);
      for (const who of order) hangsUp(who === 'bob' ? bob : alice);
      await settle();
      const after = `${where()}, after ${order.join(' then ')} hung up`;
      expect(ari.channels.get(mary.id)!.hungUp, `Mary is hung up (${after})`).to.equal(Cause.NORMAL_CLEARING);
      expect([...ari.bridges.keys()], `every bridge is destroyed (${after})`).to.deep.equal([]);
      expect(app.activeCalls.size, `the call waits for Mary's channel to go (${after})`).to.equal(1);
      await confirmHangups();
      expectNothingLeft();
    });
  }

  for (const order of [['*22', 'answer'], ['answer', '*22']] as const) {
    it(`Alice presses *22 as Mary answers (${order.join(' then ')}): Mary is hung up, Alice is back with Bob`, async function () {
      const mary = await transferTo();
      const consult = consultBridge();
      await press(alice, '*2');
      for (const what of order) app.handle(what === 'answer' ? ev.state(mary, 'Up') : ev.dtmf(alice, '2'));
      await settle();
      const after = `${where()}, after ${order.join(' then ')}`;
      expect(ari.channels.get(mary.id)!.hungUp, `Mary is hung up (${after})`).to.equal(Cause.NORMAL_CLEARING);
      expect(members(mainBridge), `Alice and Bob together again (${after})`).to.deep.equal(sorted(['alice', bob.id]));
      expect(mohIn(mainBridge), `no music for Bob (${after})`).to.equal(false);
      expect(ari.bridges.has(consult), `no consultation bridge (${after})`).to.equal(false);
      expect(ari.playing('alice'), `Alice hears no ringing (${after})`).to.deep.equal([]);
      expect(call.lastTransfer?.outcome, after).to.equal('cancelled');
      expect(ari.channels.get(bob.id)!.dtmfSent, 'Bob heard none of the codes').to.equal('');
      await confirmHangups();
      expect(call.phase, `the call goes on once Mary is gone (${where()})`).to.equal('bridged');
      await everyoneHangsUp();
      expectNothingLeft();
    });
  }

  for (const order of [['bob', 'answer'], ['answer', 'bob']] as const) {
    it(`Bob hangs up as Mary answers (${order.join(' then ')}): Alice and Mary talk as the call, in one bridge`, async function () {
      const mary = await transferTo();
      const consult = consultBridge();
      for (const what of order) {
        if (what === 'answer') app.handle(ev.state(mary, 'Up'));
        else hangsUp(bob);
      }
      await settle();
      const after = `${where()}, after ${order.join(' then ')}`;
      expect([...ari.bridges.keys()], `only the consultation bridge is left (${after})`).to.deep.equal([consult]);
      expect(members(consult), `Alice and Mary together (${after})`).to.deep.equal(sorted(['alice', mary.id]));
      expect(ari.playing('alice'), `Alice hears no ringing (${after})`).to.deep.equal([]);
      expect(call.lastTransfer?.outcome, after).to.equal('transferee_gone');
      expect(call.phase, after).to.equal('bridged');
      expect([call.a?.id, call.b?.id], after).to.deep.equal(['alice', mary.id]);
      await everyoneHangsUp();
      expectNothingLeft();
    });
  }

  for (const order of [['mary', 'alice'], ['alice', 'mary']] as const) {
    it(`Mary rejects as Alice hangs up (${order.join(' then ')}): Bob is never left holding`, async function () {
      const mary = await transferTo();
      for (const who of order) hangsUp(who === 'mary' ? mary : alice, who === 'mary' ? Cause.CALL_REJECTED : Cause.NORMAL_CLEARING);
      await settle();
      const after = `${where()}, after ${order.join(' then ')} hung up`;
      expect(mohIn(mainBridge), `no music for Bob (${after})`).to.equal(false);
      if (order[0] === 'mary') {
        // Alice was back with Bob when she hung up: an ordinary end of the call.
        expect(call.lastTransfer?.outcome, after).to.equal('failed');
        expect(ari.channels.get(bob.id)!.hungUp, `Bob is hung up (${after})`).to.equal(Cause.NORMAL_CLEARING);
      } else {
        expect(call.transfer?.state, after).to.equal('recalling');
        expect(created('recall'), `Alice is called back (${after})`).to.have.length(1);
        expect(ari.playing(bob.id), `Bob hears ringing (${after})`).to.deep.equal([RING]);
      }
      await everyoneHangsUp();
      expectNothingLeft();
    });
  }

  // ---- 5. an ARI step still in flight when a hang-up arrives ----

  it('Mary is dialled as soon as her channel enters Stasis, while Alice\'s move is still in flight, and once only', async function () {
    await press(alice, '*212600');
    const release = ari.hold('addChannel');
    app.handle(ev.dtmf(alice, '#'));
    await flush();
    const mary = channel(created('target')[0]!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await flush();
    const dials = () => ari.ops('dial').filter((c) => c.target === mary.id);
    expect(dials(), 'Mary dialled before the move of Alice ended').to.have.length(1);
    expect(members(consultBridge()), 'Alice not yet in the consultation').to.deep.equal([]);
    release();
    await settle();
    expect(dials(), 'her StasisStart, in its turn, does not dial her again').to.have.length(1);
    await answers(mary);
    expect(members(consultBridge()), `Alice and Mary talk (${where()})`).to.deep.equal(sorted(['alice', mary.id]));
    expect(mohIn(mainBridge), 'Bob holds').to.equal(true);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("Mary is dialled at once even when her StasisStart comes before Asterisk's answer to the request that made her", async function () {
    await press(alice, '*212600');
    const releaseMove = ari.hold('addChannel');
    const releaseCreate = ari.hold('createChannel');
    app.handle(ev.dtmf(alice, '#'));
    await flush();
    const id = created('target')[0]!.target;
    app.handle(ev.stasisStart({ ...alice, id, name: 'Local/2600@phones-fake', state: 'Down' }, ['leg=target', 'call=alice']));
    await flush();
    releaseCreate();
    await flush();
    const dials = () => ari.ops('dial').filter((c) => c.target === id);
    expect(dials(), 'Mary dialled while the move of Alice is still in flight').to.have.length(1);
    releaseMove();
    await settle();
    expect(dials()).to.have.length(1);
    await answers(channel(created('target')[0]!));
    expect(members(consultBridge()), `Alice and Mary talk (${where()})`).to.deep.equal(sorted(['alice', id]));
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("times a transfer from its final digit to the target's dial by Asterisk's event times, once, and only when a digit started it", async function () {
    await press(alice, '*212600');
    app.handle({ ...ev.dtmf(alice, '#'), timestamp: '2026-01-01T00:00:01.000Z' });
    await settle();
    const mary = channel(created('target')[0]!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await settle();
    app.handle({ ...ev.dial(mary, ''), timestamp: '2026-01-01T00:00:01.012Z' });
    app.handle({ ...ev.dial(mary, 'ANSWER'), timestamp: '2026-01-01T00:00:01.500Z' });
    await settle();
    expect(setUps).to.deep.equal([12]);
    await answers(mary);
    await call.cancelTransfer();
    await settle();
    // A transfer the API starts has no final digit: it is not timed.
    expect((await call.startTransfer({ by: 'a', target: '2601', options: transferOptions({}) })).ok).to.equal(true);
    await settle();
    const mary2 = channel(created('target')[1]!);
    app.handle(ev.stasisStart(mary2, ['leg=target', 'call=alice']));
    app.handle({ ...ev.dial(mary2, ''), timestamp: '2026-01-01T00:00:09.000Z' });
    await settle();
    expect(setUps).to.deep.equal([12]);
  });

  it('Alice hangs up while her move to the consultation is in flight: Bob hears ringing, not music, and gets Mary', async function () {
    await press(alice, '*212600');
    const release = ari.hold('addChannel');
    app.handle(ev.dtmf(alice, '#'));
    await flush();
    expect(ari.ops('addChannel').at(-1)!.args['channels'], 'the move of Alice is pending').to.deep.equal(['alice']);
    hangsUp(alice);
    release();
    await settle();
    const consult = consultBridge();
    expect(call.transfer?.state, `a partial transfer (${where()}, Alice gone while her move was pending)`).to.equal('partial');
    expect(mohIn(mainBridge), `Bob is not left holding with music (${where()})`).to.equal(false);
    expect(ari.playing(bob.id), `Bob hears ringing (${where()})`).to.deep.equal([RING]);
    expect(ari.bridges.has(consult), `no consultation bridge (${where()})`).to.equal(false);
    const mary = channel(created('target')[0]!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await settle();
    expect(ari.ops('dial').filter((c) => c.target === mary.id).map((c) => c.args), 'Mary is dialled on behalf of nobody')
      .to.deep.equal([{ caller: undefined, timeout: 20 }]);
    await answers(mary);
    expect(members(mainBridge), `Bob and Mary connected (${where()}, after Mary answered)`).to.deep.equal(sorted([bob.id, mary.id]));
    expect(ari.playing(bob.id), 'Bob no longer hears ringing').to.deep.equal([]);
    expect(call.lastTransfer?.outcome).to.equal('completed');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Alice hangs up while Mary\'s move into the consultation is in flight: Bob and Mary are connected', async function () {
    const mary = await transferTo();
    const consult = consultBridge();
    const release = ari.hold('addChannel');
    app.handle(ev.state(mary, 'Up'));
    await flush();
    expect(ari.ops('addChannel').at(-1)!.args['channels'], 'the move of Mary is pending').to.deep.equal([mary.id]);
    hangsUp(alice);
    release();
    await settle();
    expect(members(mainBridge), `Bob and Mary connected (${where()}, after Alice hung up)`).to.deep.equal(sorted([bob.id, mary.id]));
    expect(mohIn(mainBridge), `no music for Bob (${where()})`).to.equal(false);
    expect(ari.bridges.has(consult), `no consultation bridge (${where()})`).to.equal(false);
    expect(call.lastTransfer?.outcome).to.equal('completed');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Bob hangs up while Alice\'s return after a busy Mary is in flight: Alice is hung up, nobody is left in a bridge', async function () {
    const mary = await transferTo();
    const release = ari.hold('addChannel');
    app.handle(ev.dial(mary, 'BUSY'));
    await flush();
    expect(ari.ops('addChannel').at(-1)!.args, 'the return of Alice is pending').to.deep.include({ channels: ['alice'] });
    hangsUp(bob);
    release();
    await settle();
    expect(ari.channels.get('alice')!.hungUp, `Alice is hung up (${where()}, Bob gone while her return was pending)`)
      .to.equal(Cause.NORMAL_CLEARING);
    expect(ari.channels.get(mary.id)!.hungUp, 'Mary is hung up').to.equal(Cause.NORMAL_CLEARING);
    expect([...ari.bridges.keys()], 'every bridge is destroyed').to.deep.equal([]);
    await confirmHangups();
    expectNothingLeft();
  });

  // ---- 6. Mary fails while Alice waits ----

  it('Mary is busy while Alice waits: Alice is back with Bob, the music stops, Alice hears a failure tone', async function () {
    const mary = await transferTo();
    const consult = consultBridge();
    app.handle(ev.dial(mary, 'BUSY'));
    await settle();
    const after = `${where()}, after Dial BUSY for Mary`;
    expect(members(mainBridge), `Alice back with Bob (${after})`).to.deep.equal(sorted(['alice', bob.id]));
    expect(mohIn(mainBridge), `no more music (${after})`).to.equal(false);
    expect(ari.bridges.has(consult), `no consultation bridge (${after})`).to.equal(false);
    expect(ari.playing('alice'), `Alice's ringing stopped (${after})`).to.deep.equal([]);
    expect(playsTo(alice), `Alice hears the failure tone (${after})`).to.deep.equal([RING, BEEPERR]);
    expect(ari.channels.get(mary.id)!.hungUp, `Mary's channel is hung up (${after})`).to.equal(Cause.NORMAL_CLEARING);
    expect(call.lastTransfer?.outcome).to.equal('failed');
    expect(call.phase).to.equal('bridged');
    await confirmHangups();
    await everyoneHangsUp();
    expectNothingLeft();
  });

  /** Mary is busy: Alice is back with Bob, hearing the failure tone; then Bob hangs up. Answers what konami sent Alice meanwhile. */
  async function maryBusyThenBobHangsUp(beforeBob: () => void = () => undefined): Promise<Command[]> {
    const mary = await transferTo();
    app.handle(ev.dial(mary, 'BUSY'));
    await settle();
    beforeBob();
    await settle();
    const from = ari.commands.length;
    hangsUp(bob);
    await settle();
    return ari.commands.slice(from);
  }

  it('a party with a playback of ours not finished is hung up only once the playback is stopped and a request through its Stasis loop has returned', async function () {
    const sent = await maryBusyThenBobHangsUp();
    const tone = ari.ops('play').filter((c) => c.target === 'alice').at(-1)!;
    expect(tone.args['media']).to.equal(BEEPERR);
    // Bob hung up while Alice's failure tone may still be on its way to her bridge: the call ends.
    const toAlice = sent.filter((c) => c.target === 'alice' || c.target === tone.args['playbackId']).map((c) => c.op);
    expect(toAlice, 'stop the tone, wait for her Stasis loop, then hang up').to.deep.equal(['stopPlayback', 'answer', 'hangup']);
    await confirmHangups();
    expectNothingLeft();
  });

  it('a party whose playbacks all finished is hung up at once', async function () {
    const sent = await maryBusyThenBobHangsUp(() => {
      for (const c of ari.ops('play').filter((p) => p.target === 'alice')) app.handle(ev.playbackFinished(String(c.args['playbackId']), 'alice'));
    });
    expect(sent.filter((c) => c.target === 'alice').map((c) => c.op)).to.deep.equal(['hangup']);
    await confirmHangups();
    expectNothingLeft();
  });

  it('Mary cannot be reached at all (Asterisk refuses her channel): Alice is back with Bob at once, with a failure tone', async function () {
    ari.failNext('createChannel', 'Allocation failed', 500);
    await press(alice, '*212600#');
    expect(call.transfer, `no transfer left (${where()}, after the refused channel)`).to.equal(undefined);
    expect(call.lastTransfer?.outcome).to.equal('failed');
    expect(members(mainBridge), 'Alice back with Bob').to.deep.equal(sorted(['alice', bob.id]));
    expect(mohIn(mainBridge)).to.equal(false);
    expect(ari.bridges.size, 'no consultation bridge').to.equal(1);
    expect(ari.playing('alice'), "Alice's ringing stopped").to.deep.equal([]);
    expect(playsTo(alice).at(-1)).to.equal(BEEPERR);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Mary does not answer within the ring timeout: Alice is back with Bob and hears a failure tone', async function () {
    const mary = await transferTo();
    app.handle(ev.dial(mary, 'NOANSWER'));
    await settle();
    expect(members(mainBridge), `Alice back with Bob (${where()}, after Dial NOANSWER)`).to.deep.equal(sorted(['alice', bob.id]));
    expect(mohIn(mainBridge)).to.equal(false);
    expect(playsTo(alice).at(-1)).to.equal(BEEPERR);
    expect(call.lastTransfer?.outcome).to.equal('failed');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Mary hangs up during the consultation: Alice is back with Bob, the music stops, no failure tone', async function () {
    const mary = await transferTo();
    await answers(mary);
    hangsUp(mary);
    await settle();
    expect(members(mainBridge), `Alice back with Bob (${where()}, after Mary hung up)`).to.deep.equal(sorted(['alice', bob.id]));
    expect(mohIn(mainBridge)).to.equal(false);
    expect(ari.bridges.size, 'no consultation bridge').to.equal(1);
    expect(playsTo(alice), 'no failure tone after a consultation').to.deep.equal([RING]);
    expect(call.lastTransfer?.outcome).to.equal('target_hung_up');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  // ---- 7. partial transfers: Mary fails after Alice left ----

  it('partial, then Mary rejects: Alice is called back from Bob and, answering, is with Bob again', async function () {
    const mary = await transferTo();
    hangsUp(alice);
    await settle();
    expect(call.transfer?.state).to.equal('partial');
    expect(ari.playing(bob.id), `Bob hears ringing (${where()}, after Alice hung up)`).to.deep.equal([RING]);
    expect(mohIn(mainBridge), `no music for Bob (${where()})`).to.equal(false);
    expect(created('recall'), 'no recall while Mary rings').to.have.length(0);

    hangsUp(mary, Cause.CALL_REJECTED);
    await settle();
    const recalls = created('recall');
    expect(recalls, `Alice is called back (${where()}, after Mary rejected)`).to.have.length(1);
    expect(recalls[0]!.args, "the recall goes to Alice's number through the dial template, from Bob").to.include({
      endpoint: 'Local/1001@phones/n', app: 'konami', appArgs: 'leg=recall,call=alice', originator: bob.id,
    });
    expect(call.transfer?.state).to.equal('recalling');
    expect(ari.playing(bob.id), `Bob still hears ringing (${where()})`).to.deep.equal([RING]);
    const recall = await recallRings();
    // Bob's channel carries Alice's caller id (as Dial() sets it): named as caller, Asterisk would show Alice her own number.
    expect(ari.ops('dial').filter((c) => c.target === recall.id).map((c) => c.args), 'the recall rings for the ring timeout, with no caller channel')
      .to.deep.equal([{ caller: undefined, timeout: 20 }]);

    await answers(recall);
    expect(members(mainBridge), `Bob with Alice called back (${where()}, after the recall answered)`).to.deep.equal(sorted([bob.id, recall.id]));
    expect(ari.playing(bob.id), 'Bob no longer hears ringing').to.deep.equal([]);
    expect(call.lastTransfer?.outcome).to.equal('recalled');
    expect(call.a?.id, 'the recall takes Alice\'s place as party a').to.equal(recall.id);
    expect(call.b?.id).to.equal(bob.id);
    expect(call.phase).to.equal('bridged');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('partial, then the recall shows Alice the number of Bob, to whom she is called back', async function () {
    const mary = await transferTo();
    hangsUp(alice);
    hangsUp(mary, Cause.CALL_REJECTED);
    await settle();
    const recall = created('recall')[0];
    expect(recall, `Alice is called back (${where()})`).to.not.equal(undefined);
    // Bob's leg is the number Alice dialled (2001); an empty caller id shows Alice nothing.
    expect(recall!.args['variables'], "Alice's phone shows Bob's number").to.deep.include({ 'CALLERID(num)': '2001' });
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('partial, then Mary and the only recall fail: Bob hears a failure tone and is hung up after the farewell time', async function () {
    const mary = await transferTo();
    hangsUp(alice);
    await settle();
    hangsUp(mary, Cause.USER_BUSY);
    await settle();
    const recall = await recallRings();
    hangsUp(recall, Cause.CALL_REJECTED);
    await settle();
    const after = `${where()}, after the recall rejected`;
    expect(ari.playing(bob.id), `Bob hears the failure tone instead of ringing (${after})`).to.deep.equal([CONGESTION]);
    expect(call.lastTransfer?.outcome).to.equal('recall_failed');
    expect(created('recall'), 'no second recall').to.have.length(1);
    expect(call.phase, 'the call is ending').to.equal('ending');
    await clock.tickAsync(FAREWELL_MS - 1);
    await settle();
    expect(ari.channels.get(bob.id)!.hungUp, `Bob still hears the tone just before the farewell time (${where()})`).to.equal(undefined);
    await clock.tickAsync(1);
    await settle();
    expect(ari.channels.get(bob.id)!.hungUp, `Bob is hung up at the farewell time (${where()})`).to.equal(Cause.NORMAL_CLEARING);
    expect([...ari.bridges.keys()], 'the bridge is destroyed').to.deep.equal([]);
    await confirmHangups();
    expectNothingLeft();
  });

  it('partial with two recalls 5 s apart: nothing happens for 5 s after the first fails, then Alice is called again', async function () {
    const mary = await transferTo('2600', '23');
    hangsUp(alice);
    await settle();
    hangsUp(mary, Cause.NO_ANSWER);
    await settle();
    const first = await recallRings();
    hangsUp(first, Cause.NO_ANSWER);
    await settle();
    expect(call.transfer?.state, `waiting to call Alice again (${where()}, after the first recall failed)`).to.equal('recall_wait');
    const commands = ari.commands.length;
    await clock.tickAsync(4999);
    await settle();
    expect(ari.commands.slice(commands), `nothing happens for 5 s (${where()})`).to.deep.equal([]);
    expect(ari.playing(bob.id), 'Bob hears ringing meanwhile').to.deep.equal([RING]);
    await clock.tickAsync(1);
    await settle();
    const recalls = created('recall');
    expect(recalls, `a second recall after 5 s (${where()})`).to.have.length(2);
    expect(recalls[1]!.args['endpoint']).to.equal('Local/1001@phones/n');
    expect(call.transfer?.snapshot().recall_attempts).to.equal(2);
    const second = await recallRings();
    await answers(second);
    expect(members(mainBridge), `Bob with Alice called back (${where()})`).to.deep.equal(sorted([bob.id, second.id]));
    expect(call.lastTransfer?.outcome).to.equal('recalled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Bob hangs up while konami waits to call Alice again: no second recall, nothing left', async function () {
    const mary = await transferTo('2600', '23');
    hangsUp(alice);
    hangsUp(mary, Cause.NO_ANSWER);
    await settle();
    hangsUp(await recallRings(), Cause.NO_ANSWER);
    await settle();
    expect(call.transfer?.state).to.equal('recall_wait');
    hangsUp(bob);
    await settle();
    expect(call.lastTransfer?.outcome, `after Bob hung up (${where()})`).to.equal('abandoned');
    expectNothingLeft();
    await clock.tickAsync(10_000);
    expect(created('recall'), 'no second recall').to.have.length(1);
  });

  it('the API cancels a partial transfer: Mary is hung up and Alice is called back', async function () {
    const mary = await transferTo();
    hangsUp(alice);
    await settle();
    expect(await call.run(() => call.cancelTransfer()), 'the API may cancel').to.equal(true);
    await settle();
    expect(ari.channels.get(mary.id)!.hungUp, `Mary is hung up (${where()}, after the API cancel)`).to.equal(Cause.NORMAL_CLEARING);
    expect(created('recall'), 'Alice is called back').to.have.length(1);
    expect(call.transfer?.state).to.equal('recalling');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  // ---- 8. refusals ----

  it("*21 with Alice's own number: no one is called, Alice hears a failure tone, the call goes on untouched", async function () {
    await press(alice, '*211001#');
    expect(created('target'), 'no target channel').to.have.length(0);
    expect(playsTo(alice), 'Alice hears the failure tone').to.deep.equal([BEEPERR]);
    expect(members(mainBridge), 'still Alice with Bob').to.deep.equal(sorted(['alice', bob.id]));
    expect(mohIn(mainBridge)).to.equal(false);
    expect(call.transfer).to.equal(undefined);
    expect(ari.bridges.size, 'no consultation bridge').to.equal(1);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('*25 dials Mary through the dial route the operator allowed the account, and only through it', async function () {
    await press(alice, '*252600#');
    expect(created('target').map((c) => c.args['endpoint'])).to.deep.equal(['PJSIP/2600@trunk']);
    await press(alice, '*22');
    await confirmHangups();
    expect(call.transfer).to.equal(undefined);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('a route the operator withdrew after the code was saved: *25 is refused with a failure tone, nothing is dialled', async function () {
    allowedRoutes['acme'] = ['default'];
    await press(alice, '*252600#');
    expect(created('target'), 'no target channel').to.have.length(0);
    expect(playsTo(alice), 'Alice hears the failure tone').to.deep.equal([BEEPERR]);
    expect(members(mainBridge), 'still Alice with Bob').to.deep.equal(sorted(['alice', bob.id]));
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('transfers as a dialler: past TRANSFERS_PER_CALL the call is refused more, with a tone, nothing dialled', async function () {
    limits.perCall = 3;
    for (let i = 0; i < 5; i++) {
      await press(alice, `*21${2600 + i}#`);
      await press(alice, '*22');
      await confirmHangups();
    }
    expect(created('target'), 'three transfers, then no more').to.have.length(3);
    expect(playsTo(alice).filter((m) => m === BEEPERR), 'a failure tone for each refused one').to.have.length(2);
    expect(members(mainBridge), 'still Alice with Bob').to.deep.equal(sorted(['alice', bob.id]));
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("transfers as a dialler: past the account's rate, a transfer is refused with a tone until the bucket refills", async function () {
    limits.perAccount = new RateLimiter(1 / 60, 2, { pruneEveryMs: 0, now: () => Date.now() });
    for (let i = 0; i < 3; i++) {
      await press(alice, `*21${2600 + i}#`);
      await press(alice, '*22');
      await confirmHangups();
    }
    expect(created('target')).to.have.length(2);
    await clock.tickAsync(60_000);
    await press(alice, '*212700#');
    expect(created('target')).to.have.length(3);
    await press(alice, '*22');
    await confirmHangups();
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('a second *21 while Mary rings is refused with one playback of the failure tone then ringing again', async function () {
    const mary = await transferTo('2600');
    const ringing = ari.ops('play').find((c) => c.target === 'alice')!.args['playbackId'];
    await press(alice, '*212700#');
    expect(created('target'), `no second target (${where()}, after a second *21)`).to.have.length(1);
    const last = ari.ops('play').at(-1)!;
    expect(last.target).to.equal('alice');
    expect(last.args['media'], 'the failure tone and the ringing, as one playback').to.deep.equal([BEEPERR, RING]);
    expect(ari.ops('stopPlayback').map((c) => c.target), 'the first ringing was stopped first').to.deep.equal([ringing]);
    expect(ari.channels.get(mary.id)!.hungUp, 'Mary still rings').to.equal(undefined);
    expect(call.transfer?.snapshot()).to.deep.include({ state: 'calling', target: '2600' });
    await answers(mary);
    expect(ari.ops('stopPlayback').map((c) => c.target), "Mary's answer stops the new ringing")
      .to.deep.equal([ringing, last.args['playbackId']]);
    expect(members(consultBridge())).to.deep.equal(sorted(['alice', mary.id]));
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('a second *21 during the consultation is refused with a plain failure tone; Mary hears none of it', async function () {
    const mary = await transferTo('2600');
    await answers(mary);
    await press(alice, '*212700#');
    expect(created('target'), `no second target (${where()})`).to.have.length(1);
    expect(playsTo(alice).at(-1), 'Alice hears the failure tone').to.equal(BEEPERR);
    expect(ari.channels.get(mary.id)!.dtmfSent, 'Mary heard none of the code').to.equal('');
    expect(call.transfer?.state).to.equal('consulting');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  // ---- 9. resume ----

  it('*22 with no transfer in progress changes nothing and sends nothing', async function () {
    const commands = ari.commands.length;
    await press(alice, '*22');
    expect(ari.commands.slice(commands), 'no ARI command').to.deep.equal([]);
    expect(members(mainBridge)).to.deep.equal(sorted(['alice', bob.id]));
    expect(call.transfer).to.equal(undefined);
    expect(call.lastTransfer).to.equal(undefined);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('*22 pressed by Bob, the party being transferred, does not cancel Alice\'s transfer', async function () {
    const mary = await transferTo();
    await press(bob, '*22');
    expect(call.transfer?.state, `the transfer goes on (${where()}, after Bob's *22)`).to.equal('calling');
    expect(ari.channels.get(mary.id)!.hungUp, 'Mary still rings').to.equal(undefined);
    expect(mohIn(mainBridge), 'Bob still holds').to.equal(true);
    expect(members(consultBridge()), 'Alice still waits for Mary').to.deep.equal(['alice']);
    expect(ari.channels.get('alice')!.dtmfSent, "Alice heard none of Bob's code").to.equal('');
    await press(alice, '*22');
    expect(ari.channels.get(mary.id)!.hungUp, "Alice's own *22 cancels").to.equal(Cause.NORMAL_CLEARING);
    expect(call.lastTransfer?.outcome).to.equal('cancelled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  // ---- 9b. takeback, blind, break: Kazoo's transfer fields ----

  it('Alice presses *1 (the takeback, with no code for it) while Mary rings: Mary is hung up, Alice is back with Bob, nobody heard the keys', async function () {
    const mary = await transferTo();
    await press(alice, '*1');
    expect(ari.channels.get(mary.id)!.hungUp, `Mary is hung up (${where()}, after *1)`).to.equal(Cause.NORMAL_CLEARING);
    expect(members(mainBridge), 'Alice is back with Bob').to.deep.equal(sorted(['alice', bob.id]));
    expect(mohIn(mainBridge), "Bob's music stopped").to.equal(false);
    expect(call.lastTransfer?.outcome).to.equal('cancelled');
    expect(ari.channels.get(bob.id)!.dtmfSent, 'Bob heard none of it').to.equal('');
    await clock.tickAsync(5000);
    expect(ari.channels.get(bob.id)!.dtmfSent, 'nothing was held back to be replayed later').to.equal('');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Alice presses *1 while talking with Mary: Mary hears none of it and is hung up; Bob pressing *1 changes nothing', async function () {
    const mary = await transferTo();
    await answers(mary);
    await press(bob, '*1');
    expect(call.transfer?.state, "Bob's *1 is not a takeback").to.equal('consulting');
    await press(alice, '*1');
    expect(ari.channels.get(mary.id)!.dtmfSent, 'Mary heard none of the takeback').to.equal('');
    expect(ari.channels.get(mary.id)!.hungUp).to.equal(Cause.NORMAL_CLEARING);
    expect(call.lastTransfer?.outcome).to.equal('cancelled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("a code's own takeback_dtmf (#9) replaces *1; keys too far apart are no takeback", async function () {
    const mary = await transferTo('2600', '26');
    await press(alice, '*1');
    await clock.tickAsync(1000); // the code *1 began is given up
    expect(call.transfer?.state, '*1 is not this transfer\'s takeback').to.equal('calling');
    await press(alice, '#');
    await clock.tickAsync(2500);
    await press(alice, '9');
    expect(call.transfer?.state, '# and 9 further apart than the digit timeout').to.equal('calling');
    await press(alice, '#9');
    expect(ari.channels.get(mary.id)!.hungUp, '#9 takes Bob back').to.equal(Cause.NORMAL_CLEARING);
    expect(call.lastTransfer?.outcome).to.equal('cancelled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('#9 during the consultation: Mary hears none of it; a # that is not followed by 9 reaches her after the digit timeout', async function () {
    const mary = await transferTo('2600', '26');
    await answers(mary);
    await press(alice, '#');
    expect(ari.channels.get(mary.id)!.dtmfSent, 'the # is held: it may begin the takeback').to.equal('');
    await clock.tickAsync(2100);
    await settle();
    expect(ari.channels.get(mary.id)!.dtmfSent, 'given back after the digit timeout').to.equal('#');
    await press(alice, '#9');
    expect(ari.channels.get(mary.id)!.dtmfSent, 'the takeback itself is never heard').to.equal('#');
    expect(call.lastTransfer?.outcome).to.equal('cancelled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('with the takeback *1, Alice\'s *22 still cancels and her *5 still reaches Mary as keys', async function () {
    const mary = await transferTo();
    await answers(mary);
    await press(alice, '*5');
    await clock.tickAsync(2100);
    await settle();
    expect(ari.channels.get(mary.id)!.dtmfSent, 'not a code: replayed to Mary in order').to.equal('*5');
    await press(alice, '*22');
    expect(call.lastTransfer?.outcome, '*22 is resume').to.equal('cancelled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('the API cannot cancel while Alice is being called back: it says so (409), nothing changes', async function () {
    const control = new CallControl(app, () => null);
    const mary = await transferTo();
    hangsUp(alice);
    await settle();
    hangsUp(mary, Cause.USER_BUSY);
    await settle();
    expect(call.transfer?.state).to.equal('recalling');
    expect(await control.cancel({ account: 'acme' }, bob.id)).to.deep.equal({ ok: false, error: 'not_cancellable' });
    expect(call.transfer?.state).to.equal('recalling');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("channels carry Kazoo's names beside konami's: uuid, destination, Gregorian timestamp, owner_id of a user's number", async function () {
    const control = new CallControl(app, () => null, () => true, (account, number) => (account === 'acme' && number === '1001' ? 'u-alice' : undefined));
    const [a, b] = control.list({ account: 'acme' });
    expect(a).to.deep.include({ id: 'alice', uuid: 'alice', destination: '2001', direction: 'inbound', other_leg: bob.id, answered: true, owner_id: 'u-alice' });
    expect(a!.timestamp, 'seconds since year 0, as Kazoo counts').to.equal(Math.floor(Date.now() / 1000) + 62_167_219_200);
    expect(b).to.deep.include({ uuid: bob.id, direction: 'outbound', other_leg: 'alice' });
    expect(b, 'no user has 2001').to.not.have.property('owner_id');
    expect(control.list({ account: 'acme', numbers: new Set(['2001']) }).map((c) => c.id), "a user with 2001 sees Bob's call").to.deep.equal(['alice', bob.id]);
    expect(control.list({ account: 'acme', numbers: new Set(['3000']) }), 'a user with neither number sees nothing').to.deep.equal([]);
    expect(control.list({ account: 'other' })).to.deep.equal([]);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("a user acts on their own party only: Bob's channel is not found to Alice's user; she may cancel from either", async function () {
    const control = new CallControl(app, () => null);
    const alices = { account: 'acme', numbers: new Set(['1001']) };
    expect(await control.hangup(alices, bob.id), "Bob's channel").to.deep.equal({ ok: false, error: 'not_found' });
    expect(await control.transfer(alices, bob.id, { target: '2600' }), 'transferring Alice herself').to.deep.equal({ ok: false, error: 'not_found' });
    expect(ari.channels.get(bob.id)!.hungUp).to.equal(undefined);
    expect(control.get(alices, bob.id)?.id, 'she sees both parties of her call').to.equal(bob.id);
    expect((await control.transfer(alices, 'alice', { target: '2600' })).ok).to.equal(true);
    await settle();
    expect((await control.cancel(alices, bob.id)).ok, 'the transfer is her call\'s: cancelled from either channel').to.equal(true);
    expect((await control.hangup(alices, 'alice')).ok).to.equal(true);
    await confirmHangups();
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("API transfers take the account's transfer pattern's settings, never its fixed target or type; the request's own win", async function () {
    const metaflows = {
      binding_digit: '*', digit_timeout: 2000, listen_on: 'both' as const,
      numbers: { 9: { module: 'transfer', data: { target: '3000', transfer_type: 'blind', ring_timeout: 5 } } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 40, recall_attempts: 0, moh: 'jazz', transfer_type: 'blind', target: '3000' } } },
    };
    const control = new CallControl(app, () => metaflows);
    const started = await control.transfer({ account: 'acme' }, 'alice', { target: '2600', takeback_dtmf: '#5' });
    expect(started.ok).to.equal(true);
    await settle();
    expect(created('target').map((c) => c.args['endpoint']), 'the request\'s target').to.deep.equal(['Local/2600@phones/n']);
    expect(call.transfer?.snapshot().settings, 'the pattern\'s settings, attended, the request\'s takeback')
      .to.deep.include({ ringTimeout: 40, recallAttempts: 0, type: 'attended', takebackDtmf: '#5' });
    expect(ari.channels.get('alice')!.hungUp, 'attended: Alice stays').to.equal(undefined);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('blind (*24): Alice is hung up at once, Bob hears the ringback (no music), Mary sees Bob; Mary answers and talks with Bob', async function () {
    await press(alice, '*242600#');
    expect(ari.channels.get('alice')!.hungUp, 'Alice leaves at once').to.equal(Cause.NORMAL_CLEARING);
    hangsUp(alice);
    await settle();
    const target = created('target')[0]!;
    expect(target.args['variables'], "Mary's phone shows Bob").to.deep.include({ 'CALLERID(num)': '2001' });
    expect(target.args['originator']).to.equal(bob.id);
    const mary = channel(target);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await settle();
    expect(ari.ops('dial').filter((c) => c.target === mary.id).map((c) => c.args['caller']), "Bob's channel is not named as caller (it carries Alice's id)").to.deep.equal([undefined]);
    expect(ari.playing(bob.id), `Bob hears Kazoo's ringback as Asterisk's tone (${where()})`).to.deep.equal(['tone:425/1000,0/3000']);
    expect(mohIn(mainBridge), 'no music on hold in a blind transfer').to.equal(false);
    expect(ari.ops('createBridge').filter((c) => String(c.args['name']).endsWith('/consult')), 'no consultation').to.deep.equal([]);
    await answers(mary);
    expect(members(mainBridge), `Bob and Mary talk (${where()})`).to.deep.equal(sorted([bob.id, mary.id]));
    expect(ari.playing(bob.id)).to.deep.equal([]);
    expect(call.lastTransfer?.outcome).to.equal('completed');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('blind, and Mary is busy: Alice is called back, as after a partial transfer', async function () {
    await press(alice, '*242600#');
    hangsUp(alice);
    await settle();
    const mary = channel(created('target')[0]!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await settle();
    hangsUp(mary, Cause.USER_BUSY);
    await settle();
    expect(created('recall'), `Alice is called back (${where()})`).to.have.length(1);
    const recall = await recallRings();
    await answers(recall);
    expect(members(mainBridge), 'Alice, called back, is with Bob again').to.deep.equal(sorted([bob.id, recall.id]));
    expect(call.lastTransfer?.outcome).to.equal('recalled');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('break stops what konami plays to a party (its ringing) and nothing else', async function () {
    const mary = await transferTo();
    expect(ari.playing('alice')).to.deep.equal([RING]);
    await call.run(() => call.silence(call.legOf('alice')!));
    expect(ari.playing('alice'), 'Alice hears nothing now').to.deep.equal([]);
    expect(mohIn(mainBridge), "Bob's music plays on").to.equal(true);
    await answers(mary);
    expect(members(consultBridge()), 'the transfer goes on').to.deep.equal(sorted(['alice', mary.id]));
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("live events: the account hears each party's changes, Alice's own stream stops at her leaving", async function () {
    const events = new CallEvents(app);
    const account: string[] = [];
    const alices: string[] = [];
    const name = (e: ChannelEvent) => `${e.event_name} ${e.channel.id === 'alice' ? 'alice' : e.channel.id === bob.id ? 'bob' : 'mary'}`;
    const others: string[] = [];
    const close = () => undefined;
    events.subscribe({ account: 'acme', scope: () => ({ account: 'acme' }), send: (e) => account.push(name(e)), close });
    events.subscribe({ account: 'acme', user: 'u-alice', scope: () => ({ account: 'acme', numbers: new Set(['1001']) }), send: (e) => alices.push(name(e)), close });
    events.subscribe({ account: 'other', scope: () => ({ account: 'other' }), send: (e) => others.push(name(e)), close });
    // A listener that fails harms neither the call nor the other listeners.
    events.subscribe({ account: 'acme', scope: () => ({ account: 'acme' }), send: () => { throw new Error('a broken listener'); }, close });
    const mary = await transferTo();
    await answers(mary);
    hangsUp(alice);
    await settle();
    await everyoneHangsUp();
    // The hub began with the call in progress: at its first change (the transfer starting) it sees both parties as new.
    expect(account).to.deep.equal([
      'CHANNEL_CREATE alice', 'CHANNEL_CREATE bob',
      'CHANNEL_TRANSFEROR alice', 'CHANNEL_TRANSFEREE bob', // Mary answered
      'CHANNEL_CREATE mary', 'CHANNEL_TRANSFEREE bob', 'CHANNEL_DESTROY alice', // Alice hung up: Mary takes her place
      'CHANNEL_DESTROY bob', 'CHANNEL_DESTROY mary',
    ]);
    expect(alices, "Alice's stream: her call until she left it, and her leaving").to.deep.equal([...account.slice(0, 4), 'CHANNEL_DESTROY alice']);
    expect(others, 'another account hears nothing').to.deep.equal([]);
    expect(call.lastTransfer?.outcome, 'the transfer completed despite the broken listener').to.equal('completed');
    events.close();
    expectNothingLeft();
  });

  it('the API transfers on an account without any transfer code, with the defaults', async function () {
    const control = new CallControl(app, () => null);
    const started = await control.transfer({ account: 'acme' }, 'alice', { target: '2600' });
    expect(started.ok, 'every account may transfer through the API').to.equal(true);
    await settle();
    const target = created('target')[0]!;
    expect(target.args['endpoint'], 'through the default route').to.equal('Local/2600@phones/n');
    const mary = channel(target);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await settle();
    expect(ari.ops('dial').filter((c) => c.target === mary.id).map((c) => c.args['timeout']), 'the default ring timeout').to.deep.equal([20]);
    expect(call.transfer?.snapshot().settings).to.deep.include({ mohClass: 'default', takebackDtmf: '*1', type: 'attended', recallAttempts: 2 });
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('a hang-up Asterisk accepts but never confirms: after 3 s konami nudges the channel (a command its Stasis loop must handle), then forgets it once gone', async function () {
    const mary = await transferTo();
    hangsUp(mary, Cause.USER_BUSY);
    hangsUp(bob);
    await settle();
    expect(ari.channels.get('alice')!.hungUp, 'konami asked for Alice to go').to.equal(Cause.NORMAL_CLEARING);
    const nudges = () => ari.ops('answer').filter((c) => c.target === 'alice').length;
    const before = nudges();
    await clock.tickAsync(2900);
    expect(nudges(), 'not before 3 s').to.equal(before);
    await clock.tickAsync(200);
    await settle();
    expect(nudges(), 'nudged once').to.equal(before + 1);
    await confirmHangups();
    expectNothingLeft();
  });

  // ---- 10. snapshots ----

  it('snapshot() names the state as the transfer moves, and the last transfer keeps its outcome', async function () {
    const mary = await transferTo('2600');
    expect(call.transfer?.snapshot()).to.deep.include({
      state: 'calling', target: '2600', call_id: 'alice', target_channel: mary.id, target_answered: false,
      transferor: { role: 'a', channel: 'alice' }, transferee: { role: 'b', channel: bob.id },
      main_bridge: mainBridge, consult_bridge: consultBridge(), recall_attempts: 0,
    });
    expect(call.transfer?.snapshot().settings).to.deep.equal({
      dialTemplate: 'Local/{target}@phones/n', recallByNumber: true, ringTimeout: 20, mohClass: 'default', recallAttempts: 1, recallDelay: 5,
      takebackDtmf: '*1', ringback: 'tone:ring', type: 'attended',
    } satisfies TransferSettings);
    await answers(mary);
    expect(call.transfer?.snapshot()).to.deep.include({ state: 'consulting', target_answered: true });
    hangsUp(alice);
    await settle();
    expect(call.transfer).to.equal(undefined);
    expect(call.lastTransfer).to.deep.include({ state: 'ended', outcome: 'completed', target_channel: mary.id });
    await everyoneHangsUp();
    expectNothingLeft();
  });

  const outcomes: Array<{ outcome: string; how: string; act: (mary: ChannelSnapshot) => Promise<void> }> = [
    { outcome: 'completed', how: 'Mary answers, Alice hangs up', act: async (mary) => {
      await answers(mary);
      hangsUp(alice);
    } },
    { outcome: 'cancelled', how: 'Alice presses *22', act: () => press(alice, '*22') },
    { outcome: 'failed', how: 'Mary rejects while Alice waits', act: async (mary) => hangsUp(mary, Cause.CALL_REJECTED) },
    { outcome: 'target_hung_up', how: 'Mary hangs up during the consultation', act: async (mary) => {
      await answers(mary);
      hangsUp(mary);
    } },
    { outcome: 'recalled', how: 'Alice hangs up, Mary rejects, Alice answers the recall', act: async (mary) => {
      hangsUp(alice);
      hangsUp(mary, Cause.CALL_REJECTED);
      await settle();
      await answers(await recallRings());
    } },
    { outcome: 'recall_failed', how: 'Alice hangs up, Mary rejects, the recall is rejected', act: async (mary) => {
      hangsUp(alice);
      hangsUp(mary, Cause.CALL_REJECTED);
      await settle();
      hangsUp(await recallRings(), Cause.CALL_REJECTED);
    } },
    { outcome: 'transferee_gone', how: 'Bob hangs up during the consultation', act: async (mary) => {
      await answers(mary);
      hangsUp(bob);
    } },
    { outcome: 'abandoned', how: 'Bob hangs up while Mary rings, then Alice hangs up', act: async () => {
      hangsUp(bob);
      hangsUp(alice);
    } },
  ];
  for (const { outcome, how, act } of outcomes) {
    it(`lastTransfer.outcome is '${outcome}' when ${how}`, async function () {
      const mary = await transferTo();
      await act(mary);
      await settle();
      expect(call.transfer, `the transfer is over (${where()})`).to.equal(undefined);
      expect(call.lastTransfer?.state).to.equal('ended');
      expect(call.lastTransfer?.outcome, `after: ${how}`).to.equal(outcome);
      await everyoneHangsUp();
      expectNothingLeft();
    });
  }

  // ---- the call after a transfer ----

  it('Bob hangs up during the consultation: Alice and Mary go on in the consultation bridge, the call\'s bridge is gone', async function () {
    const mary = await transferTo();
    const consult = consultBridge();
    await answers(mary);
    hangsUp(bob);
    await settle();
    expect([...ari.bridges.keys()], `one bridge left (${where()}, after Bob hung up)`).to.deep.equal([consult]);
    expect(members(consult)).to.deep.equal(sorted(['alice', mary.id]));
    expect(call.phase).to.equal('bridged');
    expect(call.bridgeId).to.equal(consult);
    expect([call.a?.id, call.b?.id]).to.deep.equal(['alice', mary.id]);
    await press(mary, '5');
    expect(ari.channels.get('alice')!.dtmfSent, "Mary's digits reach Alice").to.equal('5');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('Bob transfers Alice: Alice holds, Bob consults Mary, Bob hangs up and Alice talks with Mary', async function () {
    const mary = await transferTo('2600', '21', bob);
    const consult = consultBridge();
    expect(members(mainBridge), `Alice alone holding (${where()}, after Bob's *21)`).to.deep.equal(['alice']);
    expect(mohIn(mainBridge)).to.equal(true);
    expect(members(consult), 'Bob waits in the consultation').to.deep.equal([bob.id]);
    expect(ari.playing(bob.id), 'Bob hears ringing').to.deep.equal([RING]);
    expect(ari.ops('dial').filter((c) => c.target === mary.id).map((c) => c.args), "Bob's channel is not named as caller (it carries Alice's id)")
      .to.deep.equal([{ caller: undefined, timeout: 20 }]);
    await press(alice, '*22');
    expect(call.transfer?.state, "Alice's *22 does not cancel Bob's transfer").to.equal('calling');
    await answers(mary);
    expect(members(consult), `Bob and Mary talk (${where()})`).to.deep.equal(sorted([bob.id, mary.id]));
    hangsUp(bob);
    await settle();
    expect(members(mainBridge), `Alice and Mary connected (${where()}, after Bob hung up)`).to.deep.equal(sorted(['alice', mary.id]));
    expect(mohIn(mainBridge)).to.equal(false);
    expect([call.a?.id, call.b?.id], 'Alice stays party a, Mary takes Bob\'s place').to.deep.equal(['alice', mary.id]);
    expect(call.lastTransfer?.outcome).to.equal('completed');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("Bob transfers Alice: Mary's phone shows Bob's number, as it shows Alice's when Alice transfers", async function () {
    await transferTo('2600', '21', bob);
    // Bob's leg is the number Alice dialled (2001); an empty caller id shows Mary nothing.
    expect(created('target')[0]!.args['variables'], "Mary's phone shows Bob's number").to.deep.include({ 'CALLERID(num)': '2001' });
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('chained: after Bob and Mary were connected, Mary transfers Bob onward to Carol', async function () {
    const mary = await transferTo('2600');
    await answers(mary);
    hangsUp(alice);
    await settle();
    const carol = await transferTo('2700', '21', mary);
    expect(created('target').at(-1)!.args['endpoint']).to.equal('Local/2700@phones/n');
    expect(call.transfer?.snapshot().transferor).to.deep.equal({ role: 'a', channel: mary.id });
    await answers(carol);
    hangsUp(mary);
    await settle();
    expect(members(mainBridge), `Bob and Carol connected (${where()})`).to.deep.equal(sorted([bob.id, carol.id]));
    expect(mohIn(mainBridge)).to.equal(false);
    expect([...ari.bridges.keys()]).to.deep.equal([mainBridge]);
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it('digits Alice left half-typed when she hung up are never played to Bob after the transfer completes', async function () {
    const mary = await transferTo();
    await answers(mary);
    await press(alice, '*2');
    hangsUp(alice);
    await settle();
    expect(members(mainBridge), `Bob and Mary connected (${where()})`).to.deep.equal(sorted([bob.id, mary.id]));
    await clock.tickAsync(5000);
    await settle();
    expect(ari.channels.get(bob.id)!.dtmfSent, "Bob hears none of Alice's digits").to.equal('');
    await everyoneHangsUp();
    expectNothingLeft();
  });

  it("Mary's plain digits after the transfer reach Bob, and never complete a code Alice began before hanging up", async function () {
    const mary = await transferTo('2600');
    await answers(mary);
    await press(alice, '*2');
    hangsUp(alice);
    await settle();
    await press(mary, '12700#');
    expect(created('target'), `Mary pressed no code: no transfer to 2700 (${where()})`).to.have.length(1);
    expect(ari.channels.get(bob.id)!.dtmfSent, "Bob hears Mary's digits").to.equal('12700#');
    await everyoneHangsUp();
    expectNothingLeft();
  });
});

describe('transfer settings from a code or a request', function () {
  it("turns Kazoo's ringback into Asterisk's tone, and a tone name into tone:", function () {
    expect(ringbackMedia('%(2000,4000,440,480)')).to.equal('tone:440+480/2000,0/4000');
    expect(ringbackMedia('%(1000,3000,425)')).to.equal('tone:425/1000,0/3000');
    expect(ringbackMedia('busy')).to.equal('tone:busy');
  });

  it('takes the defaults where nothing is given, and a lowercase takeback as uppercase', function () {
    expect(transferOptions({})).to.deep.equal({
      route: 'default', ringTimeout: 20, mohClass: 'default', recallAttempts: 2, recallDelay: 5, takebackDtmf: '*1', ringback: 'tone:ring', type: 'attended',
    });
    expect(transferOptions({ takeback_dtmf: '*a', moh_class: 'old' } as TransferData).takebackDtmf).to.equal('*A');
    expect(transferOptions({ moh_class: 'old' } as TransferData).mohClass, 'accounts saved with moh_class still hold with it').to.equal('old');
  });
});

