// Taking calls back after a restart or a lost ARI connection: the kept record
// rebuilds a call, and reconcile() plays the events konami missed, judged
// from what (the fake) Asterisk reports. Alice (1001) calls Bob (2001) and
// transfers him to Mary with *21<n>#.
import { expect } from 'chai';
import sinon from 'sinon';
import { silentLogger } from '../../../lib/log.js';
import { StasisApp, type AppSettings } from '../../../lib/stasis/app.js';
import type { ChannelSnapshot } from '../../../lib/stasis/ari-types.js';
import { Cause } from '../../../lib/stasis/causes.js';
import { CallControl } from '../../../lib/stasis/control.js';
import type { CallJournal } from '../../../lib/store/call-journal.js';
import { transferCodes } from '../../fakes/transfer-codes.js';
import { ev, FakeAri, type Command } from '../../fakes/fake-ari.js';
import { fixedRoutes } from '../../fakes/dial-routes.js';

/** Keeps the newest document per call in memory, as the file journal does on disk. */
class MemoryJournal implements CallJournal {
  readonly docs = new Map<string, string>();
  save(id: string, json: string): void {
    this.docs.set(id, json);
  }
  async saveNow(id: string, json: string): Promise<void> {
    this.docs.set(id, json);
  }
  remove(id: string): void {
    this.docs.delete(id);
  }
  async loadAll(): Promise<Array<{ id: string; state: unknown }>> {
    return [...this.docs].map(([id, json]) => ({ id, state: JSON.parse(json) as unknown }));
  }
  async flush(): Promise<void> {}
}

describe('taking calls back after a restart (fake ARI, fake timers)', function () {
  // *21<n>: one recall; *23<n>: two recalls 5 s apart; *22: resume.
  const { registry, matcher } = transferCodes();

  let clock: sinon.SinonFakeTimers;
  let ari: FakeAri;
  let journal: MemoryJournal;
  let app: StasisApp;
  let alice: ChannelSnapshot;
  let bob: ChannelSnapshot;

  const settings = (): AppSettings => ({
    app: 'konami', dialRoutes: fixedRoutes({ default: 'Local/{target}@phones/n' }), recallCallers: 'number', ringTimeout: 25, leftStasisGraceMs: 50, farewellMs: 2000, strayGraceMs: 100,
    features: { matcher: (account) => (account === 'acme' ? matcher : undefined), module: (n) => registry.get(n) },
    journal,
  });

  const settle = async () => {
    for (let i = 0; i < 6; i++) {
      for (const c of app.activeCalls.values()) await c.settled();
      await clock.tickAsync(0);
    }
  };

  const created = (kind: string): Command[] =>
    ari.ops('createChannel').filter((c) => String(c.args['appArgs']).startsWith(`leg=${kind},`));
  const snapshot = (c: Command): ChannelSnapshot => ari.channels.get(c.target)!.snapshot;
  const members = (bridgeId: string) => [...(ari.bridges.get(bridgeId)?.snapshot.channels ?? [])].sort();
  const call = () => app.activeCalls.get('alice')!;

  async function press(who: ChannelSnapshot, digits: string): Promise<void> {
    for (const d of digits) {
      app.handle(ev.dtmf(who, d));
      await settle();
    }
  }

  /** Asterisk loses a channel while konami is not looking: no event is delivered. */
  function goneUnseen(party: ChannelSnapshot): void {
    ari.channels.get(party.id)!.hungUp = Cause.NORMAL_CLEARING;
    for (const b of ari.bridges.values()) b.snapshot.channels = b.snapshot.channels.filter((x) => x !== party.id);
  }

  /** konami dies (its timers with it); a new StasisApp takes the kept calls back and reconciles. */
  async function restart(): Promise<void> {
    const now = Date.now();
    clock.reset();
    clock.setSystemTime(now);
    app = new StasisApp(ari, settings(), silentLogger());
    expect(app.restore(await journal.loadAll()), 'calls taken back').to.equal(journal.docs.size);
    const done = app.reconcile();
    await clock.tickAsync(200);
    await done;
    await settle();
  }

  /** Konami hung up some channels: Asterisk confirms each. */
  async function confirmHangups(): Promise<void> {
    for (const c of ari.channels.values()) if (c.hungUp !== undefined) app.handle(ev.destroyed(c.snapshot, c.hungUp));
    await settle();
  }

  beforeEach(async function () {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    ari = new FakeAri();
    journal = new MemoryJournal();
    app = new StasisApp(ari, settings(), silentLogger());
    alice = ari.addChannel_('alice', { state: 'Ring', caller: { name: 'Alice', number: '1001' }, exten: '2001' });
    app.handle(ev.stasisStart(alice, ['account=acme']));
    await settle();
    bob = snapshot(ari.ops('createChannel')[0]!);
    app.handle(ev.stasisStart(bob, ['leg=b', 'call=alice']));
    app.handle(ev.state(bob, 'Up'));
    await settle();
    expect(call().phase).to.equal('bridged');
  });

  afterEach(function () {
    clock.restore();
  });

  async function transfer(): Promise<{ mary: ChannelSnapshot; main: string; consult: string }> {
    await press(alice, '*212600#');
    const mary = snapshot(created('target').at(-1)!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    app.handle(ev.state(mary, 'Ringing'));
    await settle();
    return { mary, main: call().bridgeId, consult: call().transfer!.consultBridge };
  }

  /** *23 (two recalls, 5 s apart): Alice hangs up, Mary is busy, the first recall is not answered. */
  async function waitingForSecondRecall(): Promise<void> {
    await press(alice, '*232600#');
    const mary = snapshot(created('target').at(-1)!);
    app.handle(ev.stasisStart(mary, ['leg=target', 'call=alice']));
    await settle();
    ari.channels.get('alice')!.hungUp = Cause.NORMAL_CLEARING;
    app.handle(ev.destroyed(alice));
    await settle();
    ari.channels.get(mary.id)!.hungUp = Cause.USER_BUSY;
    app.handle(ev.destroyed(mary, Cause.USER_BUSY));
    await settle();
    const first = snapshot(created('recall').at(-1)!);
    app.handle(ev.stasisStart(first, ['leg=recall', 'call=alice']));
    ari.channels.get(first.id)!.hungUp = Cause.NO_ANSWER;
    app.handle(ev.destroyed(first, Cause.NO_ANSWER));
    await settle();
    expect(call().transfer?.state).to.equal('recall_wait');
  }

  it('a call is kept before konami creates a channel for it, and forgotten when it ends', async function () {
    const kept = JSON.parse(journal.docs.get('alice')!) as { legs: Array<{ id: string }>; phase: string };
    expect(kept.phase).to.equal('bridged');
    expect(kept.legs.map((l) => l.id)).to.include(bob.id);
    app.handle(ev.destroyed(alice));
    await settle();
    await confirmHangups();
    expect(app.activeCalls.size).to.equal(0);
    expect(journal.docs.size, 'nothing kept for an ended call').to.equal(0);
  });

  it('Mary ended while konami was away (transfer calling): Alice is back with Bob, music stopped', async function () {
    const { mary, main, consult } = await transfer();
    expect(members(consult)).to.deep.equal(['alice']);
    goneUnseen(mary);
    await restart();
    expect(call().transfer, 'no transfer left').to.equal(undefined);
    expect(members(main)).to.deep.equal(['alice', bob.id].sort());
    expect(ari.bridges.get(main)!.moh, "Bob's music stopped").to.equal(false);
    expect(ari.bridges.has(consult), 'consultation bridge destroyed').to.equal(false);
  });

  it('Mary answered while konami was away (transfer calling): Alice and Mary talk, Bob holds', async function () {
    const { mary, main, consult } = await transfer();
    ari.channels.get(mary.id)!.snapshot.state = 'Up';
    await restart();
    expect(call().transfer?.state).to.equal('consulting');
    expect(members(consult)).to.deep.equal(['alice', mary.id].sort());
    expect(members(main)).to.deep.equal([bob.id]);
    expect(ari.bridges.get(main)!.moh).to.equal(true);
  });

  it('Alice hung up during the consultation while konami was away: Bob and Mary are connected', async function () {
    const { mary, main } = await transfer();
    app.handle(ev.state(mary, 'Up'));
    await settle();
    goneUnseen(alice);
    const before = ari.commands.length;
    await restart();
    expect(call().transfer).to.equal(undefined);
    expect(members(main)).to.deep.equal([bob.id, mary.id].sort());
    const adds = ari.commands.slice(before).filter((c) => c.op === 'addChannel');
    expect(adds, 'Mary joined Bob once, and nobody was "put back" from the older picture').to.have.length(1);
    expect(ari.bridges.get(main)!.moh).to.equal(false);
  });

  it('konami stopped after creating Mary\'s channel but before the transfer knew it: the transfer takes her channel back and dials her', async function () {
    const { mary } = await transfer();
    const doc = JSON.parse(journal.docs.get('alice')!) as { transfer: { target?: string }; legs: Array<{ id: string; dialled: boolean; inStasis: boolean }> };
    delete doc.transfer.target;
    for (const leg of doc.legs) if (leg.id === mary.id) Object.assign(leg, { dialled: false, inStasis: false });
    journal.docs.set('alice', JSON.stringify(doc));
    ari.channels.get(mary.id)!.snapshot.state = 'Down';
    const dialsBefore = ari.ops('dial').filter((c) => c.target === mary.id).length;
    await restart();
    expect(call().transfer?.target?.id, 'Mary is the transfer\'s target again').to.equal(mary.id);
    expect(ari.ops('dial').filter((c) => c.target === mary.id).length, 'Mary is dialled').to.equal(dialsBefore + 1);
    expect(ari.channels.get(mary.id)!.hungUp, "Mary's channel is kept").to.equal(undefined);
    app.handle(ev.state(mary, 'Up'));
    await settle();
    expect(call().transfer?.state).to.equal('consulting');
  });

  it('konami stopped before even keeping Mary\'s channel: it is hung up as unknown, and Alice is back with Bob', async function () {
    const { mary, main } = await transfer();
    const doc = JSON.parse(journal.docs.get('alice')!) as { transfer: { target?: string }; legs: Array<{ id: string }> };
    delete doc.transfer.target;
    doc.legs = doc.legs.filter((leg) => leg.id !== mary.id);
    journal.docs.set('alice', JSON.stringify(doc));
    ari.channels.get(mary.id)!.snapshot.dialplan = { context: 'x', exten: 'y', priority: 1, app_name: 'Stasis', app_data: `konami,leg=target,call=alice` };
    await restart();
    expect(call().transfer, 'the transfer ended').to.equal(undefined);
    expect(call().lastTransfer?.outcome).to.equal('failed');
    expect(members(main)).to.deep.equal(['alice', bob.id].sort());
    expect(ari.channels.get(mary.id)!.hungUp, "Mary's channel hung up").to.not.equal(undefined);
  });

  it('a party found outside the bridge its state says is put back (konami stopped between two steps)', async function () {
    const { main } = await transfer();
    // Alice is back in the call's bridge although the transfer still rings Mary.
    await ari.addChannel(main, ['alice']);
    await restart();
    expect(members(call().transfer!.consultBridge)).to.deep.equal(['alice']);
    expect(members(main)).to.deep.equal([bob.id]);
  });

  it('a call kept before RECALL_CALLERS existed follows the setting of today (here: number)', async function () {
    await waitingForSecondRecall();
    const doc = JSON.parse(journal.docs.get('alice')!) as { transfer: { settings: Record<string, unknown> } };
    delete doc.transfer.settings['recallByNumber'];
    journal.docs.set('alice', JSON.stringify(doc));
    await restart();
    await clock.tickAsync(5000);
    await settle();
    expect(created('recall').map((c) => c.args['endpoint'])).to.deep.equal(['Local/1001@phones/n', 'Local/1001@phones/n']);
  });

  it('a transfer kept before takeback, ringback and blind existed runs with *1, ringing and attended after the restart', async function () {
    await transfer();
    const doc = JSON.parse(journal.docs.get('alice')!) as { transfer: { settings: Record<string, unknown> } };
    for (const k of ['takebackDtmf', 'ringback', 'type']) delete doc.transfer.settings[k];
    journal.docs.set('alice', JSON.stringify(doc));
    await restart();
    expect(call().transfer?.settings).to.deep.include({ takebackDtmf: '*1', ringback: 'tone:ring', type: 'attended' });
    await press(alice, '*1');
    expect(call().lastTransfer?.outcome, 'the takeback of the time works on the kept transfer').to.equal('cancelled');
  });

  it("break after a restart stops the ringing Bob hears in a partial transfer (the playback is kept with the call)", async function () {
    const { mary } = await transfer();
    ari.channels.get('alice')!.hungUp = Cause.NORMAL_CLEARING;
    app.handle(ev.destroyed(alice));
    await settle();
    expect(ari.playing(bob.id), 'Bob hears ringing (partial)').to.deep.equal(['tone:ring']);
    await restart();
    const control = new CallControl(app, () => null);
    expect((await control.break({ account: 'acme' }, bob.id)).ok).to.equal(true);
    expect(ari.playing(bob.id), 'break stopped it').to.deep.equal([]);
    app.handle(ev.state(mary, 'Up'));
    await settle();
    expect(members(call().bridgeId), 'Mary answers: Bob and Mary talk').to.deep.equal([bob.id, mary.id].sort());
    expect(ari.playing(bob.id), 'no ringing under the conversation').to.deep.equal([]);
  });

  it('a recall wait goes on after the restart: the next recall is dialled when it is due', async function () {
    await waitingForSecondRecall();
    await clock.tickAsync(2000);
    await restart();
    expect(created('recall'), 'not yet: 3 s of the 5 s delay are left').to.have.length(1);
    await clock.tickAsync(3000);
    await settle();
    expect(created('recall'), 'the second recall, on time').to.have.length(2);
    expect(call().transfer?.state).to.equal('recalling');
  });

  it('a kept recall timer waits for the reconciliation (ARI connected) however late konami comes back', async function () {
    await waitingForSecondRecall();
    const now = Date.now();
    clock.reset();
    clock.setSystemTime(now + 60_000); // konami came back a minute later
    app = new StasisApp(ari, settings(), silentLogger());
    app.restore(await journal.loadAll());
    await clock.tickAsync(10_000);
    expect(created('recall'), 'no recall before konami reconciled').to.have.length(1);
    const done = app.reconcile();
    await clock.tickAsync(200);
    await done;
    await settle();
    expect(created('recall'), 'the overdue recall, at once').to.have.length(2);
  });

  it('konami stopped while the call was ending (Bob gone, Alice being hung up): taken back, it ends and is forgotten', async function () {
    ari.channels.get(bob.id)!.hungUp = Cause.NORMAL_CLEARING;
    app.handle(ev.destroyed(bob));
    await settle();
    expect(call().phase, 'waiting for Alice to be gone').to.equal('ending');
    expect(ari.channels.get('alice')!.hungUp, 'Alice hung up by konami').to.not.equal(undefined);
    await restart();
    expect(app.activeCalls.size).to.equal(0);
    expect(journal.docs.size, 'nothing kept').to.equal(0);
  });

  it('a hang-up that failed while Asterisk was out of reach is asked again after the reconnection', async function () {
    ari.failNext('hangup', 'not connected to ARI', undefined);
    ari.channels.get(bob.id)!.hungUp = Cause.NORMAL_CLEARING;
    app.handle(ev.destroyed(bob));
    await settle();
    expect(ari.channels.get('alice')!.hungUp, 'the first request failed').to.equal(undefined);
    const done = app.reconcile();
    await clock.tickAsync(200);
    await done;
    await settle();
    expect(ari.ops('hangup').filter((c) => c.target === 'alice'), 'asked twice').to.have.length(2);
    await confirmHangups();
    expect(app.activeCalls.size).to.equal(0);
    expect(journal.docs.size).to.equal(0);
  });

  it('a blind transfer is kept as blind (partial) before the target\'s channel is asked for, so a restart then never holds Bob as in a consultation', async function () {
    // The record as it was when the request for Mary's channel went out.
    let keptAtCreate: { transfer?: { state?: string } } | undefined;
    const createChannel = ari.createChannel.bind(ari);
    ari.createChannel = async (p) => {
      if (String(p.appArgs).startsWith('leg=target')) keptAtCreate = JSON.parse(journal.docs.get('alice')!) as typeof keptAtCreate;
      return createChannel(p);
    };
    app.handle(ev.dtmf(alice, '*'));
    for (const d of '242600#') app.handle(ev.dtmf(alice, d));
    await settle();
    expect(keptAtCreate?.transfer?.state).to.equal('partial');
  });

  it('a reconciliation while Mary\'s channel is being created does not take her for gone', async function () {
    const release = ari.hold('createChannel');
    app.handle(ev.dtmf(alice, '*'));
    for (const d of '212600#') app.handle(ev.dtmf(alice, d));
    for (let i = 0; i < 20; i++) await clock.tickAsync(0);
    expect(ari.ops('createChannel').at(-1)?.args['appArgs']).to.match(/^leg=target/);
    const done = app.reconcile();
    await clock.tickAsync(200); // the picture is taken: Mary's channel does not exist yet
    expect(ari.ops('listChannels')).to.have.length(1);
    release();
    await settle();
    await clock.tickAsync(200);
    await done;
    await settle();
    expect(call().transfer?.state, 'the transfer goes on').to.equal('calling');
    const mary = created('target').at(-1)!.target;
    expect(ari.channels.get(mary)?.hungUp, 'Mary is not hung up').to.equal(undefined);
  });

  it('a party that left konami\'s application alive while konami was away counts as gone', async function () {
    ari.channels.get(bob.id)!.snapshot.dialplan = { context: 'x', exten: 'y', priority: 1, app_name: 'Dial', app_data: 'PJSIP/x' };
    ari.channels.get('alice')!.snapshot.dialplan = { context: 'x', exten: 'y', priority: 1, app_name: 'Stasis', app_data: 'konami,account=acme' };
    await restart();
    await confirmHangups();
    expect(app.activeCalls.size, 'the call ended').to.equal(0);
    expect(ari.liveChannels()).to.deep.equal([]);
  });

  it('Bob and Mary both gone while konami was away: Alice hears the failure tone, the call ends, nothing is left', async function () {
    const { mary } = await transfer();
    goneUnseen(bob);
    goneUnseen(mary);
    await restart();
    expect(ari.ops('play').at(-1)?.args['media']).to.equal('tone:congestion');
    await clock.tickAsync(2000);
    await settle();
    await confirmHangups();
    expect(app.activeCalls.size).to.equal(0);
    expect([...ari.bridges.keys()]).to.deep.equal([]);
    expect(ari.liveChannels()).to.deep.equal([]);
    expect(journal.docs.size).to.equal(0);
  });

  it('channels of konami\'s application that no call knows are hung up; konami\'s unknown bridges destroyed', async function () {
    journal.docs.clear();
    for (const id of ['alice', bob.id]) {
      ari.channels.get(id)!.snapshot.dialplan = { context: 'x', exten: '1', priority: 1, app_name: 'Stasis', app_data: 'konami,account=acme' };
    }
    ari.addChannel_('stranger', { dialplan: { context: 'x', exten: '1', priority: 1, app_name: 'Stasis', app_data: 'other-app' } });
    app = new StasisApp(ari, settings(), silentLogger());
    const done = app.reconcile();
    await clock.tickAsync(200);
    const report = await done;
    expect(report).to.deep.equal({ calls: 0, orphanChannels: 2, orphanBridges: 1 });
    expect(ari.liveChannels()).to.deep.equal(['stranger']);
    expect([...ari.bridges.keys()]).to.deep.equal([]);
  });
});
