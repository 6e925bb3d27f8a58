// Distributed mode across two Asterisk servers: two sandbox Asterisks (the
// second started by this suite), one PostgreSQL, two konami instances both
// configured with both servers. One instance may drive both; the other waits
// on standby, answers the API for every call, and when the driving instance
// dies it takes both servers' calls back. Alice calls Bob on each server and
// transfers him to Mary.
import { expect } from 'chai';
import { eventually } from '../harness/asterisk.js';
import { aliceCallsBob, expectBridges, side } from '../harness/bridges.js';
import { Phones, type Phone } from '../harness/phones.js';
import { apiToken, KonamiProcess } from '../harness/process.js';
import { sandboxEnv, secondSandbox, type SandboxEnv } from '../harness/sandbox.js';
import { databaseWithAccount, type KeptStore } from '../harness/stores.js';

const METAFLOWS = {
  digit_timeout: 1500,
  patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 30, recall_attempts: 1, recall_delay: 1 } } },
};

describe('distributed mode: two Asterisk servers, two instances', function () {
  this.timeout(120_000);
  let one: SandboxEnv;
  let two: SandboxEnv;
  let phones: [Phones, Phones];
  let kept: KeptStore;
  let a: KonamiProcess;
  let b: KonamiProcess | undefined;
  let n = 0;
  let started = 0;

  const settings = () => ({
    ARI_URL: `${one.url},${two.url}`, ARI_USERNAME: one.username, ARI_PASSWORD: one.password, LEASE_SECONDS: '3',
    INSTANCE_ID: `instance-${++started}`, ...kept.env,
  });

  before(async function () {
    secondSandbox('start');
    one = sandboxEnv();
    two = sandboxEnv(secondSandbox);
    // One ARI user for both servers: the second sandbox was given the first one's password.
    expect(two.username).to.equal(one.username);
    expect(two.password).to.equal(one.password);
    phones = [await Phones.connect(one), await Phones.connect(two)];
    for (const p of phones) await p.reset();
    kept = await databaseWithAccount('Two servers', METAFLOWS);
  });

  afterEach(async function () {
    await Promise.all([a?.kill('SIGTERM'), b?.kill('SIGTERM')]);
    for (const p of phones) await p.checkNothingLeftAndReset();
  });

  after(async function () {
    for (const p of phones ?? []) await p.stop();
    await kept?.close();
    secondSandbox('stop');
  });

  const number = (base: number) => `${base + ++n * 10}`;

  async function transfer(p: Phones, alice: Phone, callId: string, bob: Phone): Promise<Phone> {
    const target = number(2600);
    await alice.press(`*21${target}#`);
    const mary = await p.incoming(target);
    await mary.answer();
    await expectBridges(p.ari, callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk, Bob holds');
    return mary;
  }

  it('one instance drives both servers; killed in two consultations, the standby takes both back and each transfer completes', async function () {
    a = await KonamiProcess.start(settings(), 'two-asterisks');
    await a.untilLogged('lease acquired', 10_000);
    await eventually(async () => a.logged('lease acquired').length, (c) => c === 2, 'A drives both servers', 10_000);
    b = await KonamiProcess.start(settings(), 'two-asterisks', 'standby');
    const ready = await (await fetch(a.url('/readyz'))).json() as { role: string; leases: string[] };
    expect(ready.role).to.equal('active');
    expect([...ready.leases].sort()).to.deep.equal([new URL(one.url).host, new URL(two.url).host].sort());

    const calls = await Promise.all(phones.map((p) => aliceCallsBob(p, number(5000), kept.account)));
    // The standby lists the calls of both servers.
    const token = await apiToken(b.url(''), kept.apiKey);
    const listed = await (await fetch(b.url(`/v1/accounts/${kept.account}/channels`), { headers: { 'x-auth-token': token } })).json() as { data: Array<{ id: string }> };
    expect(listed.data.map((c) => c.id)).to.include.members(calls.map((c) => c.callId));

    const marys: Phone[] = [];
    for (const [i, p] of phones.entries()) marys.push(await transfer(p, calls[i]!.alice, calls[i]!.callId, calls[i]!.bob));
    const killedAt = Date.now();
    expect(await a.kill('SIGKILL')).to.equal(null);
    await eventually(async () => b!.logged('lease acquired').length, (c) => c === 2, 'B drives both servers', 15_000);
    await b.untilReady(10_000);
    const took = Date.now() - killedAt;
    console.log(`      both servers driven again ${took} ms after the kill`);
    expect(took, 'ms until both servers were driven again').to.be.below(8000);

    for (const [i, p] of phones.entries()) {
      const { alice, bob, callId } = calls[i]!;
      await alice.hangup();
      await expectBridges(p.ari, callId, { main: [side(bob), side(marys[i]!)] }, `server ${i + 1}: Bob and Mary connected`);
      await bob.hangup();
      await marys[i]!.waitHangup();
    }
  });

  it('each instance may drive one server: an API transfer for a call on the other\'s server is put to it', async function () {
    // A alone on the first server, B alone on the second, then both configured with both (standby for the other).
    a = await KonamiProcess.start({ ...settings(), ARI_URL: one.url }, 'two-asterisks');
    b = await KonamiProcess.start({ ...settings(), ARI_URL: two.url }, 'two-asterisks');
    const { alice, bob, callId } = await aliceCallsBob(phones[1], number(5000), kept.account);
    const token = await apiToken(a.url(''), kept.apiKey);
    const target = number(2600);
    const res = await fetch(a.url(`/v1/accounts/${kept.account}/channels/${callId}`), {
      method: 'POST', headers: { 'x-auth-token': token, 'content-type': 'application/json' }, body: JSON.stringify({ data: { action: 'transfer', target } }),
    });
    expect(res.status, await res.clone().text()).to.equal(202);
    const mary = await phones[1].incoming(target);
    await mary.answer();
    await expectBridges(phones[1].ari, callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk on the second server');
    await alice.hangup();
    await expectBridges(phones[1].ari, callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await bob.hangup();
    await mary.waitHangup();
  });
});
