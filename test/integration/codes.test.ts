import Joi from 'joi';
import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import type { Invocation } from '../../lib/metaflow/modules.js';
import type { CallModule } from '../../lib/stasis/features.js';
import { eventually } from '../harness/asterisk.js';
import { startTestKonami } from '../harness/konami.js';
import { Phones, type Phone } from '../harness/phones.js';
import { sandboxEnv } from '../harness/sandbox.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Feature codes from live DTMF on the real Asterisk', function () {
  let phones: Phones;
  let konami: Konami;
  let account: string;
  const runs: Array<{ callId: string; invocation: Invocation }> = [];

  const probe: CallModule = {
    name: 'probe',
    dataSchema: Joi.object().unknown(true),
    description: 'records that it ran',
    async run(call, invocation) {
      runs.push({ callId: call.id, invocation });
    },
  };

  before(async function () {
    const env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    konami = await startTestKonami(env, {}, { modules: [probe] });
    const created = await konami.store.create('Codes test');
    account = created.account.id;
    await konami.store.setMetaflows(account, validateMetaflows({
      digit_timeout: 1000,
      numbers: { 22: { module: 'probe', data: { name: 'resume-like' } } },
      patterns: {
        '21(\\d+)': { module: 'probe', data: { name: 'transfer-like' } },
        '9\\d\\d': { module: 'probe', data: { name: 'three digits' } },
      },
    }, konami.modules));
  });

  after(async function () {
    await konami?.stop(1000);
    await phones?.stop();
  });

  beforeEach(function () {
    runs.length = 0;
  });

  afterEach(async function () {
    await phones.checkNothingLeftAndReset();
  });

  async function connect(number: string, of = account): Promise<{ alice: Phone; bob: Phone }> {
    const alice = await phones.call(number, { account: of });
    const bob = await phones.incoming(number);
    await bob.answer();
    await alice.waitState('Up');
    // Bridged: konami answers Alice only once both are in its bridge.
    await eventually(async () => konami.app.callOf(alice.peerId!)?.phase, (p) => p === 'bridged', 'the call to be bridged');
    return { alice, bob };
  }

  async function hangUp(alice: Phone, bob: Phone): Promise<void> {
    await alice.hangup();
    await bob.waitHangup();
  }

  it('Alice presses *21 2600 #: the module runs for her leg with the capture, and Bob hears none of it', async function () {
    const { alice, bob } = await connect('3001');
    await alice.press('*212600#');
    const [run] = await eventually(async () => runs, (r) => r.length === 1, 'the module to run');
    expect(run!.callId).to.equal(alice.peerId);
    expect(run!.invocation).to.deep.include({ leg: 'a', collected: '212600', captures: ['2600'], module: 'probe' });
    expect(run!.invocation.data).to.deep.equal({ name: 'transfer-like' });
    await sleep(1500);
    expect(bob.heard, 'digits Bob received').to.equal('');
    await hangUp(alice, bob);
  });

  it('Bob presses *22: it fires on its last digit for leg b, and Alice hears none of it', async function () {
    const { alice, bob } = await connect('3002');
    await bob.press('*22');
    const [run] = await eventually(async () => runs, (r) => r.length === 1, 'the module to run', 900);
    expect(run!.invocation).to.deep.include({ leg: 'b', collected: '22', module: 'probe' });
    await sleep(1200);
    expect(alice.heard, 'digits Alice received').to.equal('');
    await hangUp(alice, bob);
  });

  it('Alice presses 123: Bob receives exactly 123, and no module runs', async function () {
    const { alice, bob } = await connect('3003');
    await alice.press('123');
    await bob.waitHeard('123');
    await sleep(1200);
    expect(bob.heard).to.equal('123');
    expect(runs).to.have.length(0);
    await hangUp(alice, bob);
  });

  it('Alice presses *9 (no such code): Bob receives *9 after the digit timeout', async function () {
    const { alice, bob } = await connect('3004');
    await alice.press('*9');
    await sleep(300);
    expect(bob.heard, 'nothing before the timeout').to.equal('');
    await bob.waitHeard('*9', 3000);
    await sleep(500);
    expect(bob.heard).to.equal('*9');
    expect(runs).to.have.length(0);
    await hangUp(alice, bob);
  });

  it('Alice presses *5, which no code starts with: Bob receives *5 at once, without waiting for the timeout', async function () {
    const { alice, bob } = await connect('3006');
    await alice.press('*5');
    await bob.waitHeard('*5', 700);
    expect(runs).to.have.length(0);
    await hangUp(alice, bob);
  });

  it('a call whose account has no metaflows passes *22 straight through', async function () {
    const plain = await konami.store.create('No codes');
    const { alice, bob } = await connect('3005', plain.account.id);
    await alice.press('*22');
    await bob.waitHeard('*22');
    expect(runs).to.have.length(0);
    await hangUp(alice, bob);
  });

  it('an account removed during a call: the call goes on, its codes no longer run and pass through as digits', async function () {
    const leaving = await konami.store.create('Leaving');
    await konami.store.setMetaflows(leaving.account.id, validateMetaflows({ numbers: { 22: { module: 'probe' } } }, konami.modules));
    const { alice, bob } = await connect('3006', leaving.account.id);
    await alice.press('*22');
    await eventually(async () => runs.length, (n) => n === 1, 'the code to run while the account exists');
    await konami.store.remove(leaving.account.id);
    bob.heard = '';
    await alice.press('*22');
    await bob.waitHeard('*22');
    expect(runs, 'no code ran after the removal').to.have.length(1);
    expect(konami.app.callOf(alice.peerId!)?.phase, 'the call is not cut').to.equal('bridged');
    await hangUp(alice, bob);
  });
});
