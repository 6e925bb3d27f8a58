import { expect } from 'chai';
import sinon from 'sinon';
import { silentLogger } from '../../../lib/log.js';
import { StasisApp } from '../../../lib/stasis/app.js';
import type { ChannelSnapshot } from '../../../lib/stasis/ari-types.js';
import { BRIDGE_TYPE, callerCause } from '../../../lib/stasis/call.js';
import { transferOptions } from '../../../lib/stasis/modules/transfer.js';
import { Cause } from '../../../lib/stasis/causes.js';
import type { RecallCallers } from '../../../lib/stasis/dial.js';
import { ev, FakeAri } from '../../fakes/fake-ari.js';
import { fixedRoutes } from '../../fakes/dial-routes.js';

describe('a call through the Stasis app (fake ARI)', function () {
  let ari: FakeAri;
  let app: StasisApp;
  let alice: ChannelSnapshot;

  beforeEach(function () {
    ari = new FakeAri();
    app = new StasisApp(ari, { app: 'konami', dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), ringTimeout: 25, leftStasisGraceMs: 50 }, silentLogger());
    alice = ari.addChannel_('alice', { state: 'Ring', caller: { name: 'Alice', number: '1001' }, exten: '2001' });
  });

  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      for (const c of app.activeCalls.values()) await c.settled();
      await new Promise((r) => setImmediate(r));
    }
  };

  async function enter(args = ['account=acme']): Promise<ChannelSnapshot> {
    app.handle(ev.stasisStart(alice, args));
    await settle();
    const create = ari.ops('createChannel')[0]!;
    return ari.channels.get(create.target)!.snapshot;
  }

  async function answered(): Promise<ChannelSnapshot> {
    const bob = await enter();
    app.handle(ev.stasisStart(bob, ['leg=b', `call=${alice.id}`]));
    app.handle(ev.state(bob, 'Ringing'));
    app.handle(ev.state(bob, 'Up'));
    await settle();
    return bob;
  }

  it('dials the template endpoint showing the caller id, and rings the caller', async function () {
    const bob = await enter();
    const create = ari.ops('createChannel')[0]!;
    expect(create.args).to.include({ endpoint: 'PJSIP/2001', app: 'konami', originator: 'alice', appArgs: 'leg=b,call=alice' });
    expect(create.args['variables']).to.deep.equal({
      'CALLERID(num)': '1001', 'CALLERID(name)': 'Alice', 'CONNECTEDLINE(num)': '1001', 'CONNECTEDLINE(name)': 'Alice',
    });
    expect(ari.channels.get('alice')!.ringing).to.equal(true);
    expect(app.callOf(bob.id)?.id).to.equal('alice');
  });

  it('uses the dial= argument over the template', async function () {
    await enter(['account=acme', 'dial=SIP/trunk/555']);
    expect(ari.ops('createChannel')[0]!.args['endpoint']).to.equal('SIP/trunk/555');
  });

  it('dials leg b with the ring timeout once it is in Stasis, and never takes it for a new call', async function () {
    const bob = await enter();
    app.handle(ev.stasisStart(bob, ['leg=b', 'call=alice']));
    await settle();
    expect(ari.ops('dial')).to.deep.equal([{ op: 'dial', target: bob.id, args: { caller: 'alice', timeout: 25 } }]);
    expect(app.activeCalls.size).to.equal(1);
  });

  it('on answer: answers the caller and bridges both legs in one mixing bridge with DTMF events', async function () {
    const bob = await answered();
    expect(ari.ops('answer').map((c) => c.target)).to.deep.equal(['alice']);
    const [bridge] = [...ari.bridges.values()];
    expect(bridge!.snapshot.channels).to.deep.equal(['alice', bob.id]);
    expect(ari.ops('createBridge')[0]!.args).to.include({ type: BRIDGE_TYPE, name: 'konami/alice' });
    expect(app.activeCalls.get('alice')?.phase).to.equal('bridged');
  });

  it('the caller hangs up: the called party is hung up, the bridge destroyed, the call forgotten', async function () {
    const bob = await answered();
    app.handle(ev.stasisEnd(alice));
    app.handle(ev.destroyed(alice, Cause.NORMAL_CLEARING));
    await settle();
    expect(ari.channels.get(bob.id)!.hungUp).to.equal(Cause.NORMAL_CLEARING);
    expect(ari.bridges.size).to.equal(0);
    expect(app.activeCalls.size).to.equal(1); // until Asterisk confirms b is gone
    app.handle(ev.destroyed(bob, Cause.NORMAL_CLEARING));
    await settle();
    expect(app.activeCalls.size).to.equal(0);
    expect(app.callOf(bob.id)).to.equal(undefined);
  });

  it('the called party hangs up: the caller is hung up', async function () {
    const bob = await answered();
    app.handle(ev.destroyed(bob, Cause.NORMAL_CLEARING));
    await settle();
    expect(ari.channels.get('alice')!.hungUp).to.equal(Cause.NORMAL_CLEARING);
    expect(ari.bridges.size).to.equal(0);
  });

  for (const [dialstatus, cause] of [['BUSY', 17], ['CONGESTION', 34], ['CHANUNAVAIL', 3], ['NOANSWER', 19]] as const) {
    it(`Dial status ${dialstatus}: the caller is hung up with cause ${cause}`, async function () {
      const bob = await enter();
      app.handle(ev.stasisStart(bob, ['leg=b']));
      app.handle(ev.dial(bob, dialstatus, alice));
      await settle();
      expect(ari.channels.get('alice')!.hungUp).to.equal(cause);
      expect(ari.channels.get(bob.id)!.hungUp).to.equal(Cause.NORMAL_CLEARING);
    });
  }

  it('the called party rejects after ringing: the caller gets its cause', async function () {
    const bob = await enter();
    app.handle(ev.state(bob, 'Ringing'));
    app.handle(ev.destroyed(bob, Cause.CALL_REJECTED));
    await settle();
    expect(ari.channels.get('alice')!.hungUp).to.equal(Cause.CALL_REJECTED);
  });

  it('the endpoint cannot be created: the caller is hung up as unallocated', async function () {
    ari.failNext('createChannel', 'Allocation failed', 500);
    app.handle(ev.stasisStart(alice, ['account=acme']));
    await settle();
    expect(ari.channels.get('alice')!.hungUp).to.equal(Cause.UNALLOCATED);
    app.handle(ev.destroyed(alice, Cause.UNALLOCATED));
    await settle();
    expect(app.activeCalls.size).to.equal(0);
  });

  it('a leg that leaves Stasis without a ChannelDestroyed is treated as gone after the grace time', async function () {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const bob = await answered();
      app.handle(ev.hangupRequest(bob, Cause.USER_BUSY));
      app.handle(ev.stasisEnd(bob));
      await settle();
      expect(ari.channels.get('alice')!.hungUp).to.equal(undefined);
      await clock.tickAsync(60);
      await settle();
      expect(ari.channels.get('alice')!.hungUp).to.equal(Cause.NORMAL_CLEARING);
      app.handle(ev.destroyed(alice));
      await settle();
      expect(app.activeCalls.size).to.equal(0);
    } finally {
      clock.restore();
    }
  });

  it('an ARI failure in one step is logged and the call still ends cleanly', async function () {
    const bob = await answered();
    ari.failNext('destroyBridge', 'Internal Server Error', 500);
    app.handle(ev.destroyed(alice));
    app.handle(ev.destroyed(bob));
    await settle();
    expect(app.activeCalls.size).to.equal(0);
  });

  it('after stopAccepting, a new call is refused with a temporary failure', async function () {
    app.stopAccepting();
    app.handle(ev.stasisStart(alice, ['account=acme']));
    await settle();
    expect(ari.ops('hangup')).to.deep.equal([{ op: 'hangup', target: 'alice', args: { cause: Cause.TEMPORARY_FAILURE } }]);
    expect(ari.ops('createChannel')).to.have.length(0);
  });

  it('a repeated account= or dial= refuses the call (call rejected) and dials nothing', async function () {
    app.handle(ev.stasisStart(alice, ['account=acme', 'dial=PJSIP/2001', 'dial=PJSIP/0900123@premium']));
    await settle();
    expect(ari.ops('hangup')).to.deep.equal([{ op: 'hangup', target: 'alice', args: { cause: Cause.CALL_REJECTED } }]);
    expect(ari.ops('createChannel')).to.have.length(0);
    expect(app.activeCalls.size).to.equal(0);
  });

  it('a dialled extension that is not a number is never put into the dial template (invalid number format)', async function () {
    alice.dialplan.exten = '2001@premium-trunk';
    app.handle(ev.stasisStart(alice, ['account=acme']));
    await settle();
    expect(ari.ops('hangup')).to.deep.equal([{ op: 'hangup', target: 'alice', args: { cause: Cause.INVALID_NUMBER_FORMAT } }]);
    expect(ari.ops('createChannel')).to.have.length(0);
  });

  it('drained() resolves true when the last call ends and false on timeout', async function () {
    const bob = await answered();
    expect(await app.drained(10)).to.equal(false);
    const waiting = app.drained(5000);
    app.handle(ev.destroyed(alice));
    app.handle(ev.destroyed(bob));
    expect(await waiting).to.equal(true);
  });

  it('maps an unanswered leg\'s plain cause to what the caller should hear', function () {
    expect(callerCause({ rang: false }, 16)).to.equal(Cause.NO_ROUTE_DESTINATION);
    expect(callerCause({ rang: true }, 16)).to.equal(Cause.NORMAL_CLEARING);
    expect(callerCause({ rang: false }, 17)).to.equal(17);
  });

  describe('who is called back after a partial transfer fails (RECALL_CALLERS)', function () {
    /** Alice (caller id 0900123456) calls Bob, transfers him to 2600, hangs up; 2600 rejects. Answers the recall's dial string, if any. */
    async function recallAfterFailedPartial(recallCallers: RecallCallers, aliceChannelName: string): Promise<string | undefined> {
      app = new StasisApp(ari, {
        app: 'konami', dialRoutes: fixedRoutes({ default: 'PJSIP/{target}@trunk' }), ringTimeout: 25, leftStasisGraceMs: 50, recallCallers,
      }, silentLogger());
      alice = ari.addChannel_('alice-2', { state: 'Ring', name: aliceChannelName, caller: { name: 'Alice', number: '0900123456' }, exten: '2001' });
      app.handle(ev.stasisStart(alice, ['account=acme']));
      await settle();
      const bob = ari.channels.get(ari.ops('createChannel')[0]!.target)!.snapshot;
      app.handle(ev.stasisStart(bob, ['leg=b', `call=${alice.id}`]));
      app.handle(ev.state(bob, 'Up'));
      await settle();
      const call = app.activeCalls.get(alice.id)!;
      const started = await call.run(() => call.startTransfer({ by: 'a', target: '2600', options: transferOptions({ recall_attempts: 1 }) }));
      expect(started.ok).to.equal(true);
      await settle();
      const mary = ari.channels.get(ari.ops('createChannel').at(-1)!.target)!.snapshot;
      app.handle(ev.stasisStart(mary, ['leg=target', `call=${alice.id}`]));
      await settle();
      app.handle(ev.destroyed(alice));
      await settle();
      app.handle(ev.destroyed(mary, Cause.CALL_REJECTED));
      await settle();
      const recall = ari.ops('createChannel').find((c) => String(c.args['appArgs']).startsWith('leg=recall,'));
      for (const id of [bob.id, recall?.target]) if (id) app.handle(ev.destroyed(ari.channels.get(id)!.snapshot));
      await settle();
      return recall?.args['endpoint'] as string | undefined;
    }

    it('device (the default): the caller is called back on the device the call came from, never on the number it claims', async function () {
      expect(await recallAfterFailedPartial('device', 'PJSIP/alice-0000002a')).to.equal('PJSIP/alice');
    });

    it('device: a caller that came from no device (a Local channel) is not called back; Bob is told and hung up', async function () {
      expect(await recallAfterFailedPartial('device', 'Local/1001@internal-00000001;2')).to.equal(undefined);
    });

    it('number: the caller id number through the transfer\'s route, for PBXs whose endpoints set caller ids', async function () {
      expect(await recallAfterFailedPartial('number', 'PJSIP/alice-0000002a')).to.equal('PJSIP/0900123456@trunk');
    });

    it('off: no caller is ever called back', async function () {
      expect(await recallAfterFailedPartial('off', 'PJSIP/alice-0000002a')).to.equal(undefined);
    });
  });
});
