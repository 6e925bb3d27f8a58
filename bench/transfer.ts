// Benchmark of transfers on the real Asterisk (the sandbox), printing:
//
// (a) the time from the final digit of *21<target># to the target's channel
//     being dialled (Asterisk's Dial event for it), median and p95: konami
//     runs in this process so both events are seen where konami sees them;
//     beside it the floor, a bare ARI script doing only what that digit must
//     cause, in the same run, and the ratio of the two;
// (b) N concurrent calls each doing a full attended transfer (Alice calls Bob,
//     presses *21<target>#, Mary answers, Alice hangs up, Bob and Mary are
//     connected), with konami as its own process: failures, konami's peak
//     RSS and CPU seconds per transfer;
// (c) the same calls one at a time, from entry to hang-up: konami's CPU per
//     call from /proc; beside it the floor, a bare ARI application doing the
//     same transfers on the same transport (bench/floor-app.ts), and the ratio.
//
//   npm run bench:transfer          BENCH_SAMPLES=30 BENCH_CALLS=100 BENCH_SERIAL=20 (0 skips a part)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { validateMetaflows } from '../lib/metaflow/config.js';
import type { AriEvent } from '../lib/stasis/ari-types.js';
import { eventually, konamiBridges } from '../test/harness/asterisk.js';
import { PHONES_TEMPLATE, startTestKonami } from '../test/harness/konami.js';
import { Phones, type Phone } from '../test/harness/phones.js';
import { dataDirWithAccount } from '../test/harness/process.js';
import type { SandboxEnv } from '../test/harness/sandbox.js';
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../lib/log.js';
import { AriConnection } from '../lib/stasis/connection.js';
import { endWithThisProcess, intEnv, percentile, procStat, startKonamiProcess, stopKonamiProcess, summary, withSandbox } from './common.js';

mkdirSync('test-output', { recursive: true });
const SAMPLES = intEnv('BENCH_SAMPLES', 30);
const CALLS = intEnv('BENCH_CALLS', 100);
const SERIAL = intEnv('BENCH_SERIAL', 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const side = (p: Phone) => p.id.replace(/;2$/, '');

const METAFLOWS = {
  numbers: { 22: { module: 'resume' } },
  patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 60 } } },
};

async function connect(phones: Phones, to: string, account: string): Promise<{ alice: Phone; bob: Phone }> {
  const alice = await phones.call(to, { account, from: { number: `1${to}`, name: 'Alice' } });
  const bob = await phones.incoming(to, 30_000);
  await bob.answer();
  await alice.waitState('Up', 30_000);
  return { alice, bob };
}

/** (a) final digit -> target dialled, one transfer at a time. */
async function digitToDial(env: SandboxEnv, phones: Phones): Promise<{ local: number[]; asterisk: number[] }> {
  const konami = await startTestKonami(env, { LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'info' });
  const account = (await konami.store.create('bench-a')).account.id;
  await konami.store.setMetaflows(account, validateMetaflows(METAFLOWS, konami.modules));
  const lastDigit = new Map<string, { at: number; ts: number }>();
  const dialled = new Map<string, { at: number; ts: number }>();
  konami.ari.on('event', (e: AriEvent) => {
    if (e.type === 'ChannelDtmfReceived' && e.digit === '#') lastDigit.set(e.channel.id, { at: performance.now(), ts: Date.parse(e.timestamp) });
    // The first Dial event of a channel (empty status) is Asterisk starting to dial it.
    if (e.type === 'Dial' && e.dialstatus === '' && !dialled.has(e.peer.id)) dialled.set(e.peer.id, { at: performance.now(), ts: Date.parse(e.timestamp) });
  });
  const local: number[] = [];
  const asterisk: number[] = [];
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const { alice, bob } = await connect(phones, `${6000 + i}`, account);
      await eventually(async () => konami.app.callOf(alice.peerId!)?.phase, (p) => p === 'bridged', 'bridged');
      const target = `${7000 + i}`;
      await alice.press(`*21${target}#`, 80, 80);
      const mary = await phones.incoming(target, 10_000);
      // Mary's phone may ring before konami's own connection delivers the Dial event.
      // Her phone may ring before the transfer's first step has ended (and named her channel).
      const targetChannel = await eventually(async () => konami.app.callOf(alice.peerId!)?.transfer?.target?.id, (v) => v !== undefined, `sample ${i}: the target's channel`);
      const x = await eventually(async () => dialled.get(targetChannel!), (v) => v !== undefined, `sample ${i}: the target's Dial event`);
      const d = lastDigit.get(alice.peerId!);
      if (!d || !x) throw new Error(`sample ${i}: no final digit seen`);
      local.push(x.at - d.at);
      asterisk.push(x.ts - d.ts);
      await mary.hangup();
      await bob.hangup();
      await alice.waitHangup(10_000);
    }
  } finally {
    await konami.stop(2000);
    await phones.reset();
  }
  return { local, asterisk };
}

/**
 * The floor for (a): a bare ARI application, in the same run against the same
 * Asterisk, doing only what the final digit of a transfer code must cause:
 * make the target's channel and dial it once it enters Stasis. Measured the
 * same way: the final digit's event to the target's first Dial event, by
 * Asterisk's own timestamps.
 */
async function floor(env: SandboxEnv, phones: Phones): Promise<number[]> {
  const ari = new AriConnection({ ...env, app: 'konami' }, silentLogger());
  const typed = new Map<string, string>();
  const hashAt = new Map<string, number>();
  const targetOf = new Map<string, string>();
  const dialledAt = new Map<string, number>();
  ari.on('event', (e: AriEvent) => {
    if (e.type === 'StasisStart') {
      if (e.args[0] === 'leg=target') void ari.dial(e.channel.id, {});
      else void ari.answer(e.channel.id);
    } else if (e.type === 'ChannelDtmfReceived') {
      if (e.digit !== '#') {
        typed.set(e.channel.id, (typed.get(e.channel.id) ?? '') + e.digit);
        return;
      }
      hashAt.set(e.channel.id, Date.parse(e.timestamp));
      const target = (typed.get(e.channel.id) ?? '').replace(/^\*21/, '');
      const channelId = `floor-${randomUUID()}`;
      targetOf.set(e.channel.id, channelId);
      void ari.createChannel({ endpoint: `Local/${target}@phones/n`, app: 'konami', appArgs: 'leg=target', channelId });
    } else if (e.type === 'Dial' && e.dialstatus === '' && !dialledAt.has(e.peer.id)) {
      dialledAt.set(e.peer.id, Date.parse(e.timestamp));
    }
  });
  await ari.start();
  const out: number[] = [];
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const alice = await phones.call(`${5000 + i}`, { account: 'floor', from: { number: '1001', name: 'Alice' } });
      await alice.waitState('Up', 10_000);
      const target = `${7500 + i}`;
      await alice.press(`*21${target}#`, 80, 80);
      const mary = await phones.incoming(target, 10_000);
      const channel = await eventually(async () => targetOf.get(alice.peerId!), (v) => v !== undefined, `floor sample ${i}: the target's channel`);
      const dialled = await eventually(async () => dialledAt.get(channel!), (v) => v !== undefined, `floor sample ${i}: the target's Dial event`);
      out.push(dialled! - hashAt.get(alice.peerId!)!);
      await mary.hangup();
      await alice.hangup();
    }
  } finally {
    await ari.stop();
    await phones.reset();
  }
  return out;
}

/**
 * (c) CPU per call, calls one at a time: each call enters, is answered,
 * Alice presses *21<target>#, Mary answers, Alice hangs up, Bob and Mary are
 * connected, and they hang up; the application as its own process, its CPU
 * read from /proc, less what it spends idle over the same time. Run for
 * konami and for the floor (bench/floor-app.ts) alike.
 */
async function oneAtATime(phones: Phones, label: string, app: ChildProcess, account: string): Promise<number> {
  const pid = app.pid!;
  const bridged = async (name: string, members: string[]) => eventually(async () => (await konamiBridges(phones.ari)).find((b) => b.name === name),
    (b) => b !== undefined && JSON.stringify([...b.channels].sort()) === JSON.stringify([...members].sort()), name, 10_000, 20);
  try {
    const from = procStat(pid);
    const t0 = performance.now();
    for (let i = 0; i < SERIAL; i++) {
      const { alice, bob } = await connect(phones, `${6500 + i}`, account);
      const target = `${7700 + i}`;
      await alice.press(`*21${target}#`, 80, 80);
      const mary = await phones.incoming(target, 10_000);
      await mary.answer();
      await bridged(`konami/${alice.peerId}/consult`, [alice.peerId!, side(mary)]);
      await alice.hangup();
      await bridged(`konami/${alice.peerId}`, [side(bob), side(mary)]);
      await mary.hangup();
      await bob.waitHangup(10_000);
    }
    const wall = (performance.now() - t0) / 1000;
    const to = procStat(pid);
    const cpu = to.cpuSeconds - from.cpuSeconds;
    // What it spends with no call at all (its timers), read after the calls, past start-up's own work.
    const idleFrom = procStat(pid).cpuSeconds;
    await sleep(5000);
    const idlePerSecond = (procStat(pid).cpuSeconds - idleFrom) / 5;
    const perCall = (cpu / SERIAL) * 1000;
    const idle = ((idlePerSecond * wall) / SERIAL) * 1000;
    const user = ((to.userSeconds - from.userSeconds) / SERIAL) * 1000;
    console.log(`    ${label} CPU per call: ${perCall.toFixed(1)} ms (user ${user.toFixed(1)}, system ${(perCall - user).toFixed(1)}; ${(perCall - idle).toFixed(1)} ms less ${idle.toFixed(1)} ms spent idle over the same time); wall ${wall.toFixed(1)} s`);
    return perCall;
  } finally {
    await phones.reset();
  }
}

/** (c) for konami, then for the floor, and their ratio. */
async function cpuPerCall(env: SandboxEnv, phones: Phones): Promise<void> {
  console.log(`(c) ${SERIAL} calls one at a time, each a full attended transfer (each application as its own process)`);
  const { dataDir, account } = await dataDirWithAccount('bench-c', METAFLOWS);
  const child = await startKonamiProcess(env, dataDir, 'test-output/bench-konami-serial.log');
  let konami: number;
  try {
    konami = await oneAtATime(phones, 'konami', child, account);
  } finally {
    await stopKonamiProcess(child);
  }
  const bare = await startFloorProcess(env);
  let floorCpu: number;
  try {
    floorCpu = await oneAtATime(phones, 'floor (bench/floor-app.ts)', bare, 'floor');
  } finally {
    await stopKonamiProcess(bare);
  }
  console.log(`    konami / floor: ${(konami / Math.max(0.1, floorCpu)).toFixed(2)}`);
}

/** The bare ARI application of bench/floor-app.ts as its own process; resolves once it is registered. */
async function startFloorProcess(env: SandboxEnv): Promise<ChildProcess> {
  const prof = process.env['BENCH_CPU_PROF'];
  const child = spawn(process.execPath, [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}/floor`] : []), '--import', 'tsx', 'bench/floor-app.ts'], {
    env: { ...process.env, ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: env.password, DIAL_TEMPLATE: PHONES_TEMPLATE },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  endWithThisProcess(child);
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench/floor-app.ts exited (${code}) before it was ready`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
  });
  return child;
}

/** (b) N concurrent full attended transfers against konami as its own process. */
async function concurrent(env: SandboxEnv, phones: Phones): Promise<void> {
  const { dataDir, account } = await dataDirWithAccount('bench-b', METAFLOWS);
  console.error(`(b) starting konami and placing ${CALLS} calls...`);
  const child = await startKonamiProcess(env, dataDir, 'test-output/bench-konami.log');
  const pid = child.pid!;
  let failures: number;
  const failed: string[] = [];
  const t0 = performance.now();
  try {
    const calls = await Promise.all(Array.from({ length: CALLS }, async (_, i) => {
      await sleep(i * 20);
      return connect(phones, `${8000 + i}`, account);
    }));
    await eventually(async () => (await konamiBridges(phones.ari)).filter((b) => b.channels.length === 2).length,
      (c) => c === CALLS, `${CALLS} bridged calls`, 60_000, 250);
    const cpuBefore = procStat(pid).cpuSeconds;
    console.error(`(b) ${CALLS} calls bridged; every Alice presses *21<target>#...`);
    const tTransfers = performance.now();
    const withMary = await Promise.all(calls.map(async ({ alice, bob }, i) => {
      await sleep(i * 20);
      const target = `${9000 + i}`;
      await alice.press(`*21${target}#`, 80, 80);
      try {
        const mary = await phones.incoming(target, 60_000);
        await mary.answer();
        return { alice, bob, mary };
      } catch (err) {
        failed.push(`call ${i}: ${(err as Error).message}`);
        return { alice, bob, mary: undefined };
      }
    }));
    const consulting = withMary.filter((c) => c.mary);
    console.error(`(b) ${consulting.length} targets answered; waiting for the consultations...`);
    // One poll of Asterisk for all calls (not one per call: that would load Asterisk itself).
    const wantConsult = new Map(consulting.map((c) => [`konami/${c.alice.peerId}/consult`, JSON.stringify([c.alice.peerId!, side(c.mary!)].sort())]));
    await eventually(async () => (await konamiBridges(phones.ari)).filter((br) => wantConsult.get(br.name) === JSON.stringify([...br.channels].sort())).length,
      (c) => c === consulting.length, 'every Alice talking with her Mary', 60_000, 1000).catch((err) => failed.push((err as Error).message));
    console.error('(b) every Alice hangs up...');
    await Promise.all(consulting.map(async (c, i) => {
      await sleep(i * 10);
      await c.alice.hangup();
    }));
    const wantDone = new Map(consulting.map((c) => [`konami/${c.alice.peerId}`, JSON.stringify([side(c.bob), side(c.mary!)].sort())]));
    let connected = 0;
    await eventually(async () => (connected = (await konamiBridges(phones.ari)).filter((br) => wantDone.get(br.name) === JSON.stringify([...br.channels].sort())).length),
      (c) => c === consulting.length, 'every Bob connected with his Mary', 60_000, 1000).catch((err) => failed.push((err as Error).message));
    failures = CALLS - connected;
    const transferSeconds = (performance.now() - tTransfers) / 1000;
    const after = procStat(pid);
    console.log(`(b) ${CALLS} concurrent calls, each a full attended transfer (konami as its own process, pid ${pid})`);
    console.log(`    completed: ${CALLS - failures}, failed: ${failures}`);
    for (const f of failed.slice(0, 5)) console.log(`    failure: ${f}`);
    console.log('    (konami\'s log: test-output/bench-konami.log)');
    console.log(`    konami peak RSS: ${(after.rssPeakKb / 1024).toFixed(1)} MB`);
    console.log(`    konami CPU during the transfers: ${(after.cpuSeconds - cpuBefore).toFixed(2)} s, ${((after.cpuSeconds - cpuBefore) / CALLS * 1000).toFixed(1)} ms per transfer`);
    console.log(`    wall time for the transfers: ${transferSeconds.toFixed(1)} s; whole run ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const c of calls) await c.bob.hangup().catch(() => undefined);
    await eventually(async () => (await phones.ari.listChannels()).map((c) => `${c.id} ${c.name} ${c.state}`),
      (left) => left.length === 0, 'every channel to be gone', 30_000, 250);
    await eventually(async () => (await phones.ari.listBridges()).length, (n) => n === 0, 'every bridge to be gone', 10_000, 250);
    console.log('    afterwards: no channel and no bridge left in Asterisk');
  } finally {
    await stopKonamiProcess(child);
    await phones.reset();
  }
  if (failures > 0) process.exitCode = 1;
}

await withSandbox(async (env) => {
  const phones = await Phones.connect(env);
  await phones.reset();
  try {
    const a = await digitToDial(env, phones);
    console.log(`(a) final digit of *21<target># -> target channel dialled (${SAMPLES} transfers, one at a time)`);
    console.log(`    from receipt in konami:     ${summary(a.local)}`);
    console.log(`    from Asterisk's event times: ${summary(a.asterisk, 'ms', 0)}`);
    if (SERIAL > 0) await cpuPerCall(env, phones);
    if (CALLS > 0) await concurrent(env, phones);
    // Last: the bare script takes konami's application name, which nothing else may hold meanwhile.
    const bare = await floor(env, phones);
    console.log(`(a) the floor, a bare ARI script in the same run (Asterisk's times): ${summary(bare, 'ms', 0)}`);
    const at = (v: readonly number[], p: number) => percentile([...v].sort((x, y) => x - y), p);
    const ratio = (p: number) => (at(a.asterisk, p) / Math.max(1, at(bare, p))).toFixed(2);
    console.log(`    konami / floor: median ${ratio(50)}, p95 ${ratio(95)}`);
  } finally {
    await phones.stop();
  }
});
