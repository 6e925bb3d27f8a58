import Joi from 'joi';
import { expect } from 'chai';
import sinon from 'sinon';
import { silentLogger } from '../../../lib/log.js';
import type { Invocation } from '../../../lib/metaflow/modules.js';
import { StasisApp } from '../../../lib/stasis/app.js';
import type { ChannelSnapshot } from '../../../lib/stasis/ari-types.js';
import type { CallModule, CallPort } from '../../../lib/stasis/features.js';
import { ev, FakeAri } from '../../fakes/fake-ari.js';
import { matcherFor } from '../metaflow/helpers.js';
import { fixedRoutes } from '../../fakes/dial-routes.js';

describe('feature codes on a bridged call (fake ARI, fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  let ari: FakeAri;
  let app: StasisApp;
  let alice: ChannelSnapshot;
  let bob: ChannelSnapshot;
  let runs: Array<{ call: CallPort; invocation: Invocation }>;
  let failing: boolean;

  const probe: CallModule = {
    name: 'probe',
    dataSchema: Joi.object().unknown(true),
    description: 'records its invocations',
    async run(call, invocation) {
      runs.push({ call, invocation });
      if (failing) throw new Error('module broke');
    },
  };

  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      for (const c of app.activeCalls.values()) await c.settled();
      await clock.tickAsync(0);
    }
  };

  beforeEach(async function () {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    runs = [];
    failing = false;
    ari = new FakeAri();
    const matcher = matcherFor({
      listen_on: 'both',
      numbers: { 22: { module: 'probe', data: { what: 'resume' } } },
      patterns: { '21(\\d+)': { module: 'probe' } },
    });
    app = new StasisApp(ari, {
      app: 'konami', dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), ringTimeout: 25,
      features: { matcher: (account) => (account === 'acme' ? matcher : undefined), module: (n) => (n === 'probe' ? probe : undefined) },
    }, silentLogger());
    alice = ari.addChannel_('alice', { state: 'Ring', caller: { name: 'Alice', number: '1001' } });
    app.handle(ev.stasisStart(alice, ['account=acme']));
    await settle();
    bob = ari.channels.get(ari.ops('createChannel')[0]!.target)!.snapshot;
    app.handle(ev.stasisStart(bob, ['leg=b']));
    app.handle(ev.state(bob, 'Up'));
    await settle();
  });

  afterEach(function () {
    clock.restore();
  });

  const press = async (who: ChannelSnapshot, digits: string) => {
    for (const d of digits) {
      app.handle(ev.dtmf(who, d));
      await settle();
    }
  };
  const sentTo = (id: string) => ari.ops('sendDtmf').filter((c) => c.target === id).map((c) => c.args['dtmf']).join('');

  it('bridges both legs with absorbDTMF so the bridge itself never passes a digit', function () {
    expect(ari.ops('addChannel')[0]!.args).to.deep.include({ channels: ['alice', bob.id], absorbDTMF: true });
  });

  it('passes ordinary digits to the other party at once, in order', async function () {
    await press(alice, '123');
    expect(sentTo(bob.id)).to.equal('123');
    await press(bob, '9#');
    expect(sentTo('alice')).to.equal('9#');
  });

  it('runs the module with the call, the leg, the digits and captures; the other party hears nothing', async function () {
    await press(alice, '*212600#');
    expect(runs).to.have.length(1);
    expect(runs[0]!.call.id).to.equal('alice');
    expect(runs[0]!.invocation).to.deep.include({ leg: 'a', collected: '212600', captures: ['2600'], module: 'probe' });
    expect(sentTo(bob.id)).to.equal('');
    await press(bob, '*22');
    expect(runs[1]!.invocation).to.deep.include({ leg: 'b', collected: '22', data: { what: 'resume' } });
    expect(sentTo('alice')).to.equal('');
  });

  it('a code that times out runs through the call queue; an unmatched one is replayed to the other party', async function () {
    await press(alice, '*2126');
    await clock.tickAsync(2000);
    await settle();
    expect(runs.map((r) => r.invocation.captures)).to.deep.equal([['26']]);
    await press(alice, '*9');
    await clock.tickAsync(2000);
    await settle();
    expect(sentTo(bob.id)).to.equal('*9');
  });

  it('a module that throws does not harm the call', async function () {
    failing = true;
    await press(alice, '*22');
    expect(runs).to.have.length(1);
    await press(alice, '5');
    expect(sentTo(bob.id)).to.equal('5');
    expect(app.activeCalls.get('alice')?.phase).to.equal('bridged');
  });

  it('digits held when the call ends are dropped, not replayed into a dead call', async function () {
    await press(alice, '*21');
    app.handle(ev.destroyed(bob));
    await settle();
    await clock.tickAsync(5000);
    await settle();
    expect(ari.ops('sendDtmf')).to.have.length(0);
    expect(runs).to.have.length(0);
  });

  it('a call without an account passes every digit', async function () {
    const carol = ari.addChannel_('carol', { state: 'Ring' });
    app.handle(ev.stasisStart(carol, []));
    await settle();
    const dave = ari.channels.get(ari.ops('createChannel')[1]!.target)!.snapshot;
    app.handle(ev.stasisStart(dave, ['leg=b']));
    app.handle(ev.state(dave, 'Up'));
    await settle();
    await press(carol, '*22');
    expect(sentTo(dave.id)).to.equal('*22');
    expect(runs).to.have.length(0);
  });
});
