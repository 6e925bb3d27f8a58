// konami killed (SIGKILL) and started again while calls are in every
// transfer state: the calls stay in Asterisk meanwhile, and konami takes them
// back from its kept state and what ARI reports, so each ends as it would have
// without the restart. Alice (1001) calls Bob and transfers him to Mary.
import { expect } from 'chai';
import { Cause } from '../../lib/stasis/causes.js';
import { eventually, konamiBridges, mohPlaysIn } from '../harness/asterisk.js';
import { aliceCallsBob, aliceTransfersTo, expectBridges as expectBridgesOf, mainBridgeOf, side } from '../harness/bridges.js';
import { Phones, type Phone } from '../harness/phones.js';
import { KonamiProcess } from '../harness/process.js';
import { sandboxEnv, type SandboxEnv } from '../harness/sandbox.js';
import { STORE_KINDS, type KeptStore } from '../harness/stores.js';

for (const kind of STORE_KINDS) describe(`konami killed and started again while calls are up (${kind.name})`, function () {
  this.timeout(60_000);
  let env: SandboxEnv;
  let phones: Phones;
  let konami: KonamiProcess;
  let kept: KeptStore;
  let account: string;
  let n = 0;

  const settings = () => ({
    ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: env.password, ...kept.env,
  });

  before(async function () {
    env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    kept = await kind.open('Restarts', {
      digit_timeout: 1500,
      numbers: { 22: { module: 'resume' } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 30, recall_attempts: 1, recall_delay: 1 } } },
    });
    account = kept.account;
  });

  beforeEach(async function () {
    konami = await KonamiProcess.start(settings(), 'restart');
  });

  afterEach(async function () {
    await konami.kill('SIGTERM');
    await phones.checkNothingLeftAndReset();
  });

  after(async function () {
    await phones?.stop();
    await kept?.close();
  });

  /** SIGKILL, then a new process on the same store. */
  async function restart(between?: () => Promise<void>): Promise<void> {
    expect(await konami.kill('SIGKILL'), 'killed, not exited').to.equal(null);
    await between?.();
    konami = await KonamiProcess.start(settings(), 'restart');
    expect(konami.logged('calls kept by the previous process taken back'), 'calls taken back').to.have.length(1);
  }

  const number = (base: number) => `${base + ++n * 10}`;
  const expectBridges = (callId: string, want: Record<string, string[]>, what: string) => expectBridgesOf(phones.ari, callId, want, what);

  const connect = () => aliceCallsBob(phones, number(5000), account);

  const transfer = (alice: Phone, callId: string, bob: Phone) => aliceTransfersTo(phones, number(2600), { alice, bob, callId });
  const mainBridge = (callId: string) => mainBridgeOf(phones.ari, callId);

  it('killed while Mary rings: started again, Mary answers and talks with Alice; Alice hangs up: Bob and Mary are connected', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await restart();
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk, Bob holds');
    expect(mohPlaysIn(await mainBridge(callId)), 'Bob still holds with music').to.equal(true);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    expect(mohPlaysIn(await mainBridge(callId)), "Bob's music stopped").to.equal(false);
    await mary.hangup();
    expect(await bob.waitHangup()).to.equal(Cause.NORMAL_CLEARING);
  });

  it('killed during the consultation, Alice hangs up while konami is down: started again, Bob and Mary are connected', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk');
    await restart(async () => {
      await alice.hangup();
    });
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    expect(mohPlaysIn(await mainBridge(callId)), "Bob's music stopped").to.equal(false);
    await bob.hangup();
    await mary.waitHangup();
  });

  it('killed during a partial transfer: started again, Mary answers and is connected with Bob', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob)] }, 'Bob alone, waiting for Mary');
    await restart();
    await mary.answer();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await bob.hangup();
    await mary.waitHangup();
  });

  it('killed while Alice is called back after Mary rejected: started again, Alice answers and is with Bob again', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob)] }, 'Bob alone, waiting for Mary');
    await mary.hangup(Cause.CALL_REJECTED);
    const recall = await phones.incoming('1001', 8000);
    await recall.ring();
    await restart();
    await recall.answer();
    await expectBridges(callId, { main: [side(bob), side(recall)] }, 'Bob with Alice called back');
    await recall.hangup();
    await bob.waitHangup();
  });

  it('killed while Mary rings, Mary busy while konami is down: started again, Alice is back with Bob', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await restart(async () => {
      await mary.hangup(Cause.USER_BUSY);
      await eventually(async () => (await phones.ari.listChannels()).some((c) => c.id === side(mary)), (v) => !v, "Mary's channel gone");
    });
    await expectBridges(callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    expect(mohPlaysIn(await mainBridge(callId)), "Bob's music stopped").to.equal(false);
    await alice.hangup();
    await bob.waitHangup();
  });

  it('a call whose kept state is lost is hung up at start, and its bridge destroyed: nothing is left behind', async function () {
    const { alice, bob } = await connect();
    expect(await konami.kill('SIGKILL')).to.equal(null);
    await kept.forgetCalls();
    konami = await KonamiProcess.start(settings(), 'restart');
    await alice.waitHangup();
    await bob.waitHangup();
    await eventually(() => konamiBridges(phones.ari), (b) => b.length === 0, 'the orphan bridge destroyed');
    expect(konami.logged('channel of no known call: hung up').length).to.be.at.least(2);
  });

  it('a call that ends normally leaves no kept state behind', async function () {
    const { alice, bob } = await connect();
    await alice.hangup();
    await bob.waitHangup();
    await eventually(() => kept.calls(), (f) => f.length === 0, 'the kept state removed');
  });

  it('a call made while konami is down is connected by the dialplan\'s fallback, without feature codes', async function () {
    expect(await konami.kill('SIGKILL')).to.equal(null);
    // Asterisk lets go of the application once it sees the connection closed: the call is made after that.
    const apps = async () => {
      const res = await fetch(`${env.url}/ari/applications`, { headers: { authorization: `Basic ${Buffer.from(`${env.username}:${env.password}`).toString('base64')}` } });
      return ((await res.json()) as Array<{ name: string }>).map((a) => a.name);
    };
    await eventually(apps, (names) => !names.includes('konami'), 'Asterisk to drop the application');
    try {
      const to = number(5000);
      const alice = await phones.call(to, { account });
      const bob = await phones.incoming(to);
      await bob.answer();
      await alice.waitState('Up');
      expect(await konamiBridges(phones.ari), 'no konami bridge: the dialplan connected them').to.deep.equal([]);
      await alice.hangup();
      await bob.waitHangup();
    } finally {
      konami = await KonamiProcess.start(settings(), 'restart');
    }
  });
});
