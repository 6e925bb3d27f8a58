// Distributed mode: two konami instances share a PostgreSQL database (a real
// server this suite starts) and one Asterisk. One drives it, holding the
// lease; the other waits on standby. When the active instance dies (SIGKILL),
// is cut from the database, or the database itself restarts, calls go on:
// the standby takes the lease and takes every call back from the shared
// journal, and two instances never drive Asterisk at once. Alice (1001) calls
// Bob and transfers him to Mary.
import { expect } from 'chai';
import { Cause } from '../../lib/stasis/causes.js';
import { mohPlaysIn } from '../harness/asterisk.js';
import { aliceCallsBob, aliceTransfersTo, expectBridges as expectBridgesOf, mainBridgeOf, side } from '../harness/bridges.js';
import { Phones, type Phone } from '../harness/phones.js';
import { startPostgres, type Postgres } from '../harness/postgres.js';
import { EventStream } from '../harness/events.js';
import { apiToken, KonamiProcess, type LogLine } from '../harness/process.js';
import { CuttableProxy } from '../harness/proxy.js';
import { sandboxEnv, type SandboxEnv } from '../harness/sandbox.js';
import { accountIn, databaseWithAccount, type KeptStore } from '../harness/stores.js';

/** The lease term of these instances (LEASE_SECONDS): a dead holder is replaced within about 4 s. */
const LEASE_SECONDS = 3;
/** The bound: a standby holds the lease within this long of the active instance's death. */
const TAKEOVER_MS = 5000;

const METAFLOWS = {
  digit_timeout: 1500,
  numbers: { 22: { module: 'resume' } },
  patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 30, recall_attempts: 1, recall_delay: 1 } } },
};

const at = (line: LogLine) => Date.parse(String(line['time']));

describe('distributed mode: a standby instance takes over the calls of one that died', function () {
  this.timeout(90_000);
  let env: SandboxEnv;
  let phones: Phones;
  let kept: KeptStore;
  let active: KonamiProcess;
  let standby: KonamiProcess;
  let n = 0;
  let started = 0;

  const settings = (extra: Record<string, string> = {}) => ({
    ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: env.password, LEASE_SECONDS: String(LEASE_SECONDS),
    INSTANCE_ID: `instance-${++started}`, ...kept.env, ...extra,
  });

  before(async function () {
    env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    kept = await databaseWithAccount('Failover', METAFLOWS);
  });

  beforeEach(async function () {
    active = await KonamiProcess.start(settings(), 'failover');
    standby = await KonamiProcess.start(settings(), 'failover', 'standby');
  });

  afterEach(async function () {
    await Promise.all([active.kill('SIGTERM'), standby.kill('SIGTERM')]);
    await phones.checkNothingLeftAndReset();
  });

  after(async function () {
    await phones?.stop();
    await kept?.close();
  });

  /** SIGKILL of the active instance; the standby must hold the lease within TAKEOVER_MS, then be ready. */
  async function killActive(between?: () => Promise<void>, callsKept = true): Promise<void> {
    const killedAt = Date.now();
    expect(await active.kill('SIGKILL'), 'killed, not exited').to.equal(null);
    await between?.();
    const acquired = await standby.untilLogged('lease acquired', 15_000);
    expect(at(acquired) - killedAt, 'ms from the kill to the lease taken').to.be.below(TAKEOVER_MS);
    await standby.untilReady(10_000);
    console.log(`      lease taken ${at(acquired) - killedAt} ms after the kill; calls back ${Date.now() - killedAt} ms after`);
    expect(standby.logged('calls kept by the previous process taken back'), 'calls taken back').to.have.length(callsKept ? 1 : 0);
    [active, standby] = [standby, await KonamiProcess.start(settings(), 'failover', 'standby')];
  }

  const number = (base: number) => `${base + ++n * 10}`;
  const expectBridges = (callId: string, want: Record<string, string[]>, what: string) => expectBridgesOf(phones.ari, callId, want, what);
  const connect = () => aliceCallsBob(phones, number(5000), kept.account);

  const transfer = (alice: Phone, callId: string, bob: Phone) => aliceTransfersTo(phones, number(2600), { alice, bob, callId });
  const mainBridge = (callId: string) => mainBridgeOf(phones.ari, callId);

  /** Mary answers (Alice and Mary talk, Bob holds), Alice hangs up (Bob and Mary are connected), and the call ends. */
  async function maryAnswersAliceLeaves(call: { alice: Phone; bob: Phone; callId: string }, mary: Phone, talking: string): Promise<void> {
    const { alice, bob, callId } = call;
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, talking);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await bob.hangup();
    await mary.waitHangup();
  }

  it('the standby waits without touching Asterisk, and says so on /readyz and /metrics', async function () {
    const ready = await (await fetch(standby.url('/readyz'))).json() as Record<string, unknown>;
    // Ready for the API all the same: it puts requests about calls to the instance that has them.
    expect(ready).to.deep.include({ status: 'ready', role: 'standby', leases: [] });
    const activeReady = await (await fetch(active.url('/readyz'))).json() as Record<string, unknown>;
    expect(activeReady).to.deep.include({ status: 'ready', role: 'active', leases: [new URL(env.url).host] });
    expect(await (await fetch(standby.url('/metrics'))).text()).to.contain(`konami_lease_held{asterisk="${new URL(env.url).host}"} 0`);
    expect(await (await fetch(active.url('/metrics'))).text()).to.contain(`konami_lease_held{asterisk="${new URL(env.url).host}"} 1`);
    // A call is served by the active instance alone.
    const { alice, bob } = await connect();
    expect(standby.logged('call entered'), 'the standby saw no call').to.deep.equal([]);
    await alice.hangup();
    await bob.waitHangup();
  });

  it('any instance answers for any call: the standby lists the active one\'s calls and transfers one, answering as the active would; another account\'s call is as one that does not exist', async function () {
    const { alice, bob, callId } = await connect();
    const api = async (p: KonamiProcess, path: string, token: string, body?: unknown) => {
      const res = await fetch(p.url(`/v1/accounts/${kept.account}${path}`), {
        method: body ? 'POST' : 'GET', headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() as { data: Record<string, unknown> & Array<{ id: string }>; message?: string } };
    };
    const viaStandby = await apiToken(standby.url(''), kept.apiKey);
    const listed = await api(standby, '/channels', viaStandby);
    expect(listed.status).to.equal(200);
    expect(listed.body.data.map((c) => c.id), 'the active instance\'s call, listed by the standby').to.include.members([callId, side(bob)]);
    const one = await api(standby, `/channels/${side(bob)}`, viaStandby);
    const fromActive = await api(active, `/channels/${side(bob)}`, viaStandby);
    expect(one.status).to.equal(200);
    expect(one.body.data, 'the same answer as the active instance gives').to.deep.equal(fromActive.body.data);

    // Another account, with a valid key of its own, cannot tell the call from one that does not exist.
    const other = await accountIn(kept.env['DATABASE_URL']!, 'Other', METAFLOWS);
    const otherToken = await apiToken(standby.url(''), other.apiKey);
    const otherPath = (id: string) => fetch(standby.url(`/v1/accounts/${other.account}/channels/${id}`), {
      method: 'POST', headers: { 'x-auth-token': otherToken, 'content-type': 'application/json' }, body: JSON.stringify({ data: { action: 'transfer', target: '2600' } }),
    }).then(async (r) => ({ status: r.status, message: (await r.json() as { message: string }).message }));
    expect(await otherPath(callId)).to.deep.equal(await otherPath('no-such-call'));
    expect((await otherPath(callId)).status).to.equal(404);

    const target = number(2600);
    const started = await api(standby, `/channels/${callId}`, viaStandby, { data: { action: 'transfer', target } });
    expect(started.status, JSON.stringify(started.body)).to.equal(202);
    const mary = await phones.incoming(target);
    await maryAnswersAliceLeaves({ alice, bob, callId }, mary, 'Alice and Mary talk, Bob holds');
  });

  it('an event stream opened on the standby tells of the active instance\'s calls as they happen', async function () {
    const token = await apiToken(standby.url(''), kept.apiKey);
    const stream = await EventStream.open(standby.url(`/v1/accounts/${kept.account}/events?auth_token=${token}`));
    expect(stream.status).to.equal(200);
    try {
      const { alice, bob, callId } = await connect();
      await stream.next((e) => e.event_name === 'CHANNEL_CREATE' && e.channel.id === callId, "Alice's channel, from the active instance");
      await stream.next((e) => e.event_name === 'CHANNEL_ANSWER' && e.channel.id === side(bob), "Bob's answer");
      await alice.hangup();
      await bob.waitHangup();
      await stream.next((e) => e.event_name === 'CHANNEL_DESTROY' && e.channel.id === side(bob), "Bob's end");
    } finally {
      await stream.close();
    }
  });

  it('metaflows changed through the standby apply to a call on the active instance within a second', async function () {
    const { alice, bob, callId } = await connect();
    const token = await apiToken(standby.url(''), kept.apiKey);
    const flows = { ...METAFLOWS, patterns: { ...METAFLOWS.patterns, '31(\\d+)': { module: 'transfer', data: { ring_timeout: 30 } } } };
    const res = await fetch(standby.url(`/v1/accounts/${kept.account}/metaflows`), {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': token }, body: JSON.stringify({ data: flows }),
    });
    expect(res.status, await res.clone().text()).to.equal(200);
    await new Promise((r) => setTimeout(r, 1000));
    const target = number(2600);
    await alice.press(`*31${target}#`);
    const mary = await phones.incoming(target);
    await maryAnswersAliceLeaves({ alice, bob, callId }, mary, 'the new code started a transfer: Alice and Mary talk');
  });

  it('killed during the consultation: the standby takes over; Alice hangs up: Bob and Mary are connected', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await mary.answer();
    await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk');
    await killActive();
    expect(mohPlaysIn(await mainBridge(callId)), 'Bob still holds with music').to.equal(true);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    expect(mohPlaysIn(await mainBridge(callId)), "Bob's music stopped").to.equal(false);
    await mary.hangup();
    expect(await bob.waitHangup()).to.equal(Cause.NORMAL_CLEARING);
  });

  it('killed while Mary rings: the standby takes over; Mary answers and talks with Alice; Alice hangs up: Bob and Mary are connected', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await killActive();
    await maryAnswersAliceLeaves({ alice, bob, callId }, mary, 'Alice and Mary talk, Bob holds');
  });

  it('killed during a partial transfer, Mary answers while no instance drives: the standby connects Bob and Mary', async function () {
    const { alice, bob, callId } = await connect();
    const mary = await transfer(alice, callId, bob);
    await alice.hangup();
    await expectBridges(callId, { main: [side(bob)] }, 'Bob alone, waiting for Mary');
    await killActive(async () => {
      await mary.answer();
    });
    await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await bob.hangup();
    await mary.waitHangup();
  });

  it('a call placed while no instance drives (the active one just died) rings on, and enters konami once the standby takes over', async function () {
    const to = number(5000);
    let alice: Phone | undefined;
    await killActive(async () => {
      // The dialplan keeps trying Stasis() each second for 8 s (extensions.conf.sample's distributed context).
      alice = await phones.call(to, { account: kept.account, from: { number: '1001', name: 'Alice' }, wait: 8 });
    }, false);
    const bob = await phones.incoming(to, 10_000);
    await bob.answer();
    await alice!.waitState('Up');
    await expectBridges(alice!.peerId!, { main: [alice!.peerId!, side(bob)] }, 'Alice and Bob in konami\'s bridge');
    await alice!.hangup();
    await bob.waitHangup();
  });

  it('cut from the database without a word: the active instance stops driving before the standby starts, and the call goes on', async function () {
    // The active instance reaches PostgreSQL through a proxy that will lose every packet.
    await active.kill('SIGTERM');
    await standby.kill('SIGTERM');
    const database = new URL(kept.env['DATABASE_URL']!);
    const proxy = await CuttableProxy.start(`http://${database.host}`);
    try {
      const through = new URL(database);
      through.port = String(proxy.port);
      active = await KonamiProcess.start(settings({ DATABASE_URL: through.toString() }), 'failover');
      standby = await KonamiProcess.start(settings(), 'failover', 'standby');
      const { alice, bob, callId } = await connect();
      const mary = await transfer(alice, callId, bob);
      proxy.partition();
      const lost = await active.untilLogged('lease lost', 15_000);
      expect(await active.exited, 'the fenced instance ends (its supervisor starts it again as a standby)').to.equal(75);
      const acquired = await standby.untilLogged('lease acquired', 15_000);
      expect(at(acquired), 'the standby began after the other stopped').to.be.above(at(lost));
      await standby.untilReady(10_000);
      [active, standby] = [standby, await KonamiProcess.start(settings(), 'failover', 'standby')];
      await maryAnswersAliceLeaves({ alice, bob, callId }, mary, 'Alice and Mary talk');
    } finally {
      await proxy.stop();
    }
  });

  it('cut from its Asterisk while the database is reached: the active instance gives the server up, and the standby takes its calls', async function () {
    await active.kill('SIGTERM');
    await standby.kill('SIGTERM');
    // The active instance reaches Asterisk through a proxy that will cut it off; both name the server alike.
    const proxy = await CuttableProxy.start(env.url);
    try {
      active = await KonamiProcess.start(settings({ ARI_URL: `sandbox=${proxy.url}`, ARI_GIVE_UP: '2' }), 'failover');
      standby = await KonamiProcess.start(settings({ ARI_URL: `sandbox=${env.url}` }), 'failover', 'standby');
      const { alice, bob, callId } = await connect();
      const mary = await transfer(alice, callId, bob);
      await proxy.cut();
      expect(await active.exited, 'the instance that cannot reach Asterisk lets it go and ends').to.equal(75);
      expect(active.logged('lease released'), 'its lease given back at once').to.have.length(1);
      await standby.untilLogged('lease acquired', 10_000);
      await standby.untilReady(10_000);
      // The next standby names the server as the others do (another name would be another server to it).
      [active, standby] = [standby, await KonamiProcess.start(settings({ ARI_URL: `sandbox=${env.url}` }), 'failover', 'standby')];
      await maryAnswersAliceLeaves({ alice, bob, callId }, mary, 'Alice and Mary talk');
    } finally {
      await proxy.stop();
    }
  });

  describe('PostgreSQL restarted during calls', function () {
    let server: Postgres | undefined;
    after(function () {
      server?.destroy();
    });

    it('a short restart: the active instance keeps driving; a long one: it stops, and an instance takes over when the database is back; no call is dropped', async function () {
      await active.kill('SIGTERM');
      await standby.kill('SIGTERM');
      // A server of this test's own, which it may stop and start.
      server = await startPostgres();
      const url = await server.database();
      const { account: own } = await accountIn(url, 'Failover', METAFLOWS);
      active = await KonamiProcess.start(settings({ DATABASE_URL: url }), 'failover');
      standby = await KonamiProcess.start(settings({ DATABASE_URL: url }), 'failover', 'standby');
      const { alice, bob, callId } = await aliceCallsBob(phones, number(5000), own);
      const mary = await transfer(alice, callId, bob);

      server.kill();
      await new Promise((r) => setTimeout(r, 500));
      server.start();
      await mary.answer();
      await expectBridges(callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice and Mary talk, after a short restart');
      expect(active.logged('lease lost'), 'the active instance kept its lease').to.deep.equal([]);

      server.kill();
      expect(await active.exited, 'the active instance stopped when its lease ran out').to.equal(75);
      await new Promise((r) => setTimeout(r, 1000));
      server.start();
      await standby.untilLogged('lease acquired', 15_000);
      await standby.untilReady(10_000);
      [active, standby] = [standby, await KonamiProcess.start(settings({ DATABASE_URL: url }), 'failover', 'standby')];
      await alice.hangup();
      await expectBridges(callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
      await bob.hangup();
      await mary.waitHangup();
    });
  });
});
