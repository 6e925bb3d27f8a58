// SIGTERM: konami stops taking calls and API requests, lets transfers in
// flight finish within SHUTDOWN_GRACE, then hands its calls over to the next
// konami (SHUTDOWN_CALLS=handover, the default) or hangs them up (hangup).
import { rm } from 'node:fs/promises';
import { expect } from 'chai';
import { Cause } from '../../lib/stasis/causes.js';
import { aliceCallsBob, expectBridges as expectBridgesOf, side } from '../harness/bridges.js';
import { Phones, type Phone } from '../harness/phones.js';
import { EventStream } from '../harness/events.js';
import { apiToken, dataDirWithAccount, KonamiProcess } from '../harness/process.js';
import { sandboxEnv, type SandboxEnv } from '../harness/sandbox.js';

describe('Stopping konami with SIGTERM', function () {
  this.timeout(60_000);
  let env: SandboxEnv;
  let phones: Phones;
  let konami: KonamiProcess | undefined;
  let dataDir: string;
  let account: string;
  let apiKey: string;
  let n = 0;

  const settings = (extra: Record<string, string> = {}) => ({
    ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: env.password, DATA_DIR: dataDir, ...extra,
  });

  before(async function () {
    env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    ({ dataDir, account, apiKey } = await dataDirWithAccount('Shutdown', {
      numbers: { 22: { module: 'resume' } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 30 } } },
    }));
  });

  afterEach(async function () {
    await konami?.kill('SIGTERM');
    konami = undefined;
    await phones.checkNothingLeftAndReset();
  });

  after(async function () {
    await phones?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const number = (base: number) => `${base + ++n * 10}`;
  const expectBridges = (callId: string, want: Record<string, string[]>, what: string) => expectBridgesOf(phones.ari, callId, want, what);

  /** Alice calls Bob, transfers him to Mary, and Mary answers or rings. */
  async function consultation(maryAnswers: boolean): Promise<{ alice: Phone; bob: Phone; mary: Phone; callId: string }> {
    const { alice, bob, callId } = await aliceCallsBob(phones, number(6000), account);
    const target = number(2800);
    await alice.press(`*21${target}#`);
    const mary = await phones.incoming(target);
    if (maryAnswers) {
      await mary.answer();
      await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk, Bob holds');
    } else {
      await mary.ring();
      await expectBridges(callId, { main: [side(bob)], consult: [callId] }, 'Bob holds, Mary rings');
    }
    return { alice, bob, mary, callId };
  }

  it('waits for a transfer in flight, refusing new calls and API requests meanwhile; the call is handed over to the next konami', async function () {
    konami = await KonamiProcess.start(settings({ SHUTDOWN_GRACE: '20' }), 'shutdown');
    const { alice, bob, mary, callId } = await consultation(true);
    konami.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    expect(konami.child.exitCode, 'still up while the transfer is in flight').to.equal(null);
    expect(await konami.readiness(), 'the API no longer answers').to.equal(0);
    const late = await phones.call(number(6000), { account });
    expect(await late.waitHangup(), 'a new call is refused').to.equal(Cause.TEMPORARY_FAILURE);

    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    expect(await konami.exited, 'exits cleanly once the transfer is done').to.equal(0);
    expect(konami.logged('calls handed over')).to.have.length(1);
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary still talk with konami stopped');

    konami = await KonamiProcess.start(settings(), 'shutdown');
    expect(konami.logged('calls kept by the previous process taken back')).to.have.length(1);
    await bob.hangup();
    expect(await mary.waitHangup(), 'the next konami ends the call it took back').to.equal(Cause.NORMAL_CLEARING);
  });

  /** A konami started after the stop takes the handed-over transfer back: Mary answers, Alice leaves, Bob and Mary talk, the call ends. */
  async function nextKonamiCompletes({ alice, bob, mary, callId }: { alice: Phone; bob: Phone; mary: Phone; callId: string }): Promise<void> {
    konami = await KonamiProcess.start(settings(), 'shutdown');
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk');
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await mary.hangup();
    await bob.waitHangup();
  }

  it('a transfer not finished within the grace is handed over too, and the next konami completes it', async function () {
    konami = await KonamiProcess.start(settings({ SHUTDOWN_GRACE: '1' }), 'shutdown');
    const { alice, bob, mary, callId } = await consultation(false);
    const started = Date.now();
    expect(await konami.kill('SIGTERM')).to.equal(0);
    expect(Date.now() - started, 'bounded by the grace').to.be.below(5000);
    expect(konami.logged('transfers still in progress after the grace period')).to.have.length(1);

    await nextKonamiCompletes({ alice, bob, mary, callId });
  });

  it('Ctrl-C, SIGTERM, Ctrl-C again (a terminal and npm start both ask): one stop, the call handed over, never killed midway', async function () {
    konami = await KonamiProcess.start(settings({ SHUTDOWN_GRACE: '1' }), 'shutdown');
    const { alice, bob, mary, callId } = await consultation(false);
    konami.child.kill('SIGINT');
    konami.child.kill('SIGTERM');
    await konami.untilLogged('stopping: no new calls or API requests', 5000);
    konami.child.kill('SIGINT');
    expect(await konami.exited, 'konami\'s own exit, not death by a signal').to.equal(0);
    expect(konami.logged('shutting down'), 'one stop').to.have.length(1);
    expect(konami.logged('already stopping'), 'the later signals, said').to.have.length(2);
    expect(konami.logged('stopped')).to.have.length(1);
    // The transfer was handed over whole.
    await nextKonamiCompletes({ alice, bob, mary, callId });
  });

  it('with SHUTDOWN_CALLS=hangup: after the grace every call is hung up and nothing is left in Asterisk, an open event stream notwithstanding', async function () {
    konami = await KonamiProcess.start(settings({ SHUTDOWN_GRACE: '1', SHUTDOWN_CALLS: 'hangup' }), 'shutdown');
    // A browser tab following the account's calls: its stream must not hold konami up.
    const stream = await EventStream.open(konami.url(`/v1/accounts/${account}/events`), { 'x-auth-token': await apiToken(konami.url(''), apiKey) });
    expect(stream.status).to.equal(200);
    const { alice, bob, mary } = await consultation(false);
    const started = Date.now();
    expect(await konami.kill('SIGTERM')).to.equal(0);
    for (const p of [alice, bob, mary]) await p.waitHangup();
    await stream.ended();
    expect(Date.now() - started, 'stopped within the grace and the hang-ups, not at the stream\'s token expiry').to.be.below(8000);
    expect(konami.logged('calls still up at shutdown: hanging them up')).to.have.length(1);
    expect(konami.logged('shutdown did not finish in time'), 'no stop forced by the deadline').to.have.length(0);
  });
});
