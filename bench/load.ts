// Load: LOAD_CALLS calls at once (default 200) for LOAD_SECONDS (default 90)
// against konami as its own process on the sandbox Asterisk, every call doing
// a full attended transfer, while API clients list the account's calls and
// send requests konami must refuse. Each call: Alice calls Bob, presses
// *21<target>#, Mary answers, Alice hangs up, and once konami's API reports
// the transfer completed Bob presses 7 and Mary must hear it (Bob and Mary
// connected), Bob hangs up; then the slot starts a new call.
// Talk times are 5-15 s, 2-6 s and 5-15 s, so a call lasts about 25 s, as
// telephone calls go (shorter calls mean more set-ups a second, which load
// the 2-core machine's Asterisk before konami).
//
// LOAD_TALK_MS=<min>-<max> sets every talk time instead (LOAD_TALK_MS=500-1000
// makes calls of 2 to 4 s, set-ups included: the machine's Asterisk then
// works at its limit, and the CPU of both shows which saturates first).
//
// Prints completed and failed calls (failed must be 0), API requests by
// status (no 5xx allowed), konami's peak RSS and CPU and Asterisk's CPU
// (each as a share of one core), and the transfer set-up time, median and
// p95: on Asterisk's clock as konami reports it (its log line "transfer
// target dialled", the same figure as its konami_transfer_setup_seconds
// histogram: the final digit's event to the target's Dial event), and as the
// phones see it (the harness's clock, from the end of the time it gives its
// DTMF to Mary's phone ringing, with an offset of its own). Exit code 1 on
// any failure.
//
// LOAD_CLUSTER=1 runs distributed mode instead: a PostgreSQL server and a
// second sandbox Asterisk the benchmark starts, and two konami instances: A
// drives the first Asterisk, B the second and is standby for the first. The
// calls alternate between the two servers; the API clients and the harness's
// checks use B, which puts requests about A's calls to A. Halfway, A is
// killed (SIGKILL): B takes the first server's calls back. Digits pressed
// while no instance drives a server reach nobody, so a phone whose code (or
// whose 7) had no effect within 5 s presses it again, as a person would;
// such presses are counted and printed.
//
//   npm run load              LOAD_CALLS=200 LOAD_SECONDS=90 LOAD_API_CLIENTS=4 LOAD_TALK_MS= LOAD_CLUSTER=
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../lib/log.js';
import { openPool } from '../lib/store/database.js';
import { eventually } from '../test/harness/asterisk.js';
import { startPostgres } from '../test/harness/postgres.js';
import { apiToken, dataDirWithAccount, keptCalls } from '../test/harness/process.js';
import { sandboxEnv, sandboxPid, sandboxRunning, secondSandbox, type SandboxEnv } from '../test/harness/sandbox.js';
import { accountIn } from '../test/harness/stores.js';
import { Phones, type Phone } from '../test/harness/phones.js';
import { intEnv, procStat, startKonamiProcess, stopKonamiProcess, summary, withSandbox } from './common.js';

mkdirSync('test-output', { recursive: true });
const CALLS = intEnv('LOAD_CALLS', 200);
const SECONDS = intEnv('LOAD_SECONDS', 90);
const API_CLIENTS = intEnv('LOAD_API_CLIENTS', 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));
const TALK = /^(\d+)-(\d+)$/.exec(process.env['LOAD_TALK_MS'] ?? '');
if (process.env['LOAD_TALK_MS'] && !TALK) throw new Error('LOAD_TALK_MS must be <min>-<max> in ms, e.g. 500-1000');
/** A talk time: the given range for every phase when LOAD_TALK_MS is set. */
const talk = (min: number, max: number) => (TALK ? jitter(Number(TALK[1]), Number(TALK[2])) : jitter(min, max));

const CLUSTER = process.env['LOAD_CLUSTER'] === '1';
/** How long a phone waits for its digits to take effect before pressing them again (distributed mode only). */
const PRESS_AGAIN_MS = 5000;

interface Tally {
  completed: number;
  /** Digits pressed again because the first press reached no instance (distributed mode). */
  pressedAgain: number;
  failed: string[];
  setupMs: number[];
  active: number;
  peakActive: number;
}

/** konami's API, as the harness reads it. */
interface Api { base: string; account: string; token: string }

/** Whether konami reports the call's last transfer completed (Bob and Mary bridged). */
async function transferCompleted(api: Api, callId: string): Promise<boolean> {
  const res = await fetch(`${api.base}/v1/accounts/${api.account}/channels/${callId}`, { headers: { 'x-auth-token': api.token } });
  if (!res.ok) return false;
  return ((await res.json()) as { data?: { last_transfer?: { outcome?: string } | null } }).data?.last_transfer?.outcome === 'completed';
}

async function oneCall(phones: Phones, api: Api, slot: number, n: number, t: Tally): Promise<void> {
  const { account } = api;
  const bobNumber = `${4_000_000 + slot * 1000 + (n % 1000)}`;
  const maryNumber = `${5_000_000 + slot * 1000 + (n % 1000)}`;
  t.active++;
  t.peakActive = Math.max(t.peakActive, t.active);
  const mine: Phone[] = [];
  let step = 'call';
  try {
    // In distributed mode the dialplan keeps trying konami for up to 6 s, as extensions.conf.sample's distributed context does.
    const alice = await phones.call(bobNumber, { account, from: { number: `6${slot}`, name: 'Alice' }, wait: CLUSTER ? 6 : 0 });
    mine.push(alice);
    step = 'Bob rings';
    const bob = await phones.incoming(bobNumber, 30_000);
    mine.push(bob);
    step = 'Bob answers';
    await bob.answer();
    await alice.waitState('Up', 30_000);
    await sleep(talk(5000, 15_000)); // Alice and Bob talk
    step = 'code pressed';
    await alice.press(`*21${maryNumber}#`, 80, 80);
    const sent = performance.now();
    step = 'Mary rings';
    const mary = await again(() => phones.incoming(maryNumber, CLUSTER ? PRESS_AGAIN_MS : 30_000), () => alice.press(`*21${maryNumber}#`, 80, 80), t);
    mine.push(mary);
    t.setupMs.push(performance.now() - sent);
    step = 'Mary answers';
    await mary.answer();
    await sleep(talk(2000, 6000)); // Alice and Mary talk
    step = 'Alice hangs up';
    await alice.hangup();
    // Bob speaks once he is with Mary: on a saturated Asterisk that can take longer than a
    // person's pause, and a digit a holding party presses before then reaches nobody.
    step = 'transfer completed';
    await eventually(() => transferCompleted(api, bob.id.replace(/;2$/, '')), (done) => done, 'the transfer completed (API)', 20_000, 100);
    step = 'Bob presses 7';
    await bob.press('7', 100, 100);
    step = 'Mary hears 7';
    await again(() => mary.waitHeard('7', CLUSTER ? PRESS_AGAIN_MS : 20_000), () => bob.press('7', 100, 100), t);
    await sleep(talk(5000, 15_000)); // Bob and Mary talk
    step = 'Bob hangs up';
    await bob.hangup();
    step = 'Mary hung up';
    await mary.waitHangup(20_000);
    t.completed++;
  } catch (err) {
    t.failed.push(`${step}: ${(err as Error).message.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 120)}`);
    for (const p of mine) await p.hangup().catch(() => undefined);
  } finally {
    t.active--;
  }
}

/**
 * Waits for `effect`; in distributed mode, when it does not come in time, the
 * phone presses its digits again (twice at most), as a person would.
 */
async function again<T>(effect: () => Promise<T>, pressAgain: () => Promise<void>, t: Tally): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await effect();
    } catch (err) {
      if (!CLUSTER || attempt > 2) throw err;
      t.pressedAgain++;
      await pressAgain();
    }
  }
}

/** One API client: lists the account's calls, and now and then sends a request konami must refuse. */
async function apiClient(base: string, account: string, token: string, until: number, statuses: Map<number, number>, unavailableAt: number[]): Promise<void> {
  const headers = { 'x-auth-token': token, 'content-type': 'application/json' };
  let i = 0;
  while (performance.now() < until) {
    let res: Response;
    try {
      if (++i % 5 === 0) {
        res = await fetch(`${base}/v1/accounts/${account}/channels/no-such-call`, {
          method: 'POST', headers, body: JSON.stringify({ data: { action: 'transfer', target: '2600' } }),
        });
      } else if (i % 7 === 0) {
        res = await fetch(`${base}/v1/accounts/${account}/channels/x`, { method: 'POST', headers, body: '{"data": {"action": "fly"}}' });
      } else {
        res = await fetch(`${base}/v1/accounts/${account}/channels`, { headers });
      }
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 503) unavailableAt.push(performance.now());
    } catch {
      statuses.set(0, (statuses.get(0) ?? 0) + 1);
    }
    await sleep(20);
  }
}

/** konami as the load sees it: one instance, or two in distributed mode (the first killed halfway). */
interface Deployment {
  phones: Phones[];
  /** The instance the API clients and the checks use. */
  base: string;
  account: string;
  apiKey: string;
  konamis: Array<ChildProcess & { httpPort: number }>;
  logs: string[];
  asterisks: number[];
  /** Calls still kept after the run (the journal, or the database). */
  kept(): Promise<number>;
  /** Halfway through (distributed mode): what happened. */
  halfway?(): Promise<string>;
  close(): Promise<void>;
}

const METAFLOWS = {
  numbers: { 22: { module: 'resume' } },
  patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 60 } } },
};

async function single(env: SandboxEnv): Promise<Deployment> {
  const { dataDir, account, apiKey } = await dataDirWithAccount('load', METAFLOWS);
  const konami = await startKonamiProcess(env, dataDir, 'test-output/load-konami.log', { RATE_LIMIT: '100000' });
  const phones = await Phones.connect(env);
  return {
    phones: [phones], base: `http://127.0.0.1:${konami.httpPort}`, account, apiKey, konamis: [konami],
    logs: ['test-output/load-konami.log'], asterisks: [sandboxPid()],
    kept: async () => (await keptCalls(dataDir)).length,
    close: () => stopKonamiProcess(konami),
  };
}

async function cluster(one: SandboxEnv): Promise<Deployment> {
  const secondHere = !sandboxRunning(secondSandbox);
  if (secondHere) secondSandbox('start');
  const two = sandboxEnv(secondSandbox);
  const server = await startPostgres();
  const url = await server.database();
  const { account, apiKey } = await accountIn(url, 'load', METAFLOWS);
  const unused = mkdtempSync(join(tmpdir(), 'konami-load-'));
  const common = { RATE_LIMIT: '100000', DATABASE_URL: url, LEASE_SECONDS: '3' };
  const a = await startKonamiProcess(one, unused, 'test-output/load-konami-a.log', { ...common, INSTANCE_ID: 'load-a' });
  const b = await startKonamiProcess(one, unused, 'test-output/load-konami-b.log', { ...common, INSTANCE_ID: 'load-b', ARI_URL: `${two.url},${one.url}` });
  const role = async (port: number) => ((await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { leases?: string[] }).leases ?? [];
  await eventually(() => role(b.httpPort), (l) => l.length === 1, 'B drives the second server', 15_000, 100);
  const phones = [await Phones.connect(one), await Phones.connect(two)];
  const pool = openPool(url, silentLogger(), { max: 1 });
  return {
    phones, base: `http://127.0.0.1:${b.httpPort}`, account, apiKey, konamis: [a, b],
    logs: ['test-output/load-konami-a.log', 'test-output/load-konami-b.log'],
    asterisks: [sandboxPid(), Number(secondSandbox('pid').trim())],
    kept: async () => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM calls')).rows[0]!.n),
    halfway: async () => {
      const killedAt = performance.now();
      a.kill('SIGKILL');
      await eventually(() => role(b.httpPort), (l) => l.length === 2, 'B drives both servers', 15_000, 50);
      return `instance A killed (SIGKILL); B drove both servers ${((performance.now() - killedAt) / 1000).toFixed(1)} s later`;
    },
    close: async () => {
      await Promise.all([a, b].map((k) => stopKonamiProcess(k)));
      await pool.end();
      server.destroy();
      if (secondHere) secondSandbox('stop');
    },
  };
}

await withSandbox(async (env) => {
  const d = CLUSTER ? await cluster(env) : await single(env);
  const { base, account, apiKey, phones } = d;
  for (const p of phones) await p.reset();
  const t: Tally = { completed: 0, pressedAgain: 0, failed: [], setupMs: [], active: 0, peakActive: 0 };
  const statuses = new Map<number, number>();
  try {
    const token = await apiToken(base, apiKey);
    console.error(`load: ${CALLS} calls at once for ${SECONDS} s, ${API_CLIENTS} API clients; konami pid ${d.konamis.map((k) => k.pid).join(', ')}`);
    const started = performance.now();
    const until = started + SECONDS * 1000;
    const cpu = () => d.konamis.reduce((sum, k) => sum + (k.exitCode === null && k.signalCode === null ? procStat(k.pid!).cpuSeconds : 0), 0);
    const asteriskCpu = () => d.asterisks.reduce((sum, pid) => sum + procStat(pid).cpuSeconds, 0);
    let konamiCpu = -cpu();
    const asteriskBefore = asteriskCpu();
    const report = setInterval(() => {
      console.error(`load: ${((performance.now() - started) / 1000).toFixed(0)} s: ${t.active} calls up, ${t.completed} completed, ${t.failed.length} failed`);
    }, 10_000);
    let happened = '';
    /** When no instance drove the first server (distributed mode): its API answers 503 then, by design. */
    const takeover = { from: Infinity, to: -Infinity };
    const unavailableAt: number[] = [];
    const half = d.halfway && (async () => {
      await sleep((SECONDS * 1000) / 2);
      // The CPU of the instance about to die is counted up to its death.
      const aCpu = procStat(d.konamis[0]!.pid!).cpuSeconds;
      takeover.from = performance.now();
      happened = await d.halfway!();
      // The other instances' list is read at most once a second: a request may find the dead one a second more.
      takeover.to = performance.now() + 1500;
      konamiCpu += aCpu;
    })();
    const api = Array.from({ length: API_CLIENTS }, () => apiClient(base, account, token, until, statuses, unavailableAt));
    const slots = Array.from({ length: CALLS }, async (_, slot) => {
      await sleep(slot * 100); // ramp up over CALLS/10 seconds
      const p = phones[slot % phones.length]!;
      for (let n = 0; performance.now() < until; n++) await oneCall(p, { base, account, token }, slot, n, t);
    });
    await Promise.all([...slots, ...api, half]);
    clearInterval(report);
    const wall = (performance.now() - started) / 1000;
    konamiCpu += cpu();
    const survivor = d.konamis.at(-1)!;
    const stat = procStat(survivor.pid!);
    const asteriskUsed = asteriskCpu() - asteriskBefore;
    const leftOver = await eventually(async () => (await Promise.all(phones.map((p) => p.ari.listChannels()))).flat().length, (n) => n === 0, 'every channel gone', 30_000, 250)
      .then(() => '', (err: Error) => err.message);
    // konami forgets a call a moment after its last channel is gone.
    const kept = await eventually(() => d.kept(), (k) => k === 0, 'no call state kept', 10_000, 250).catch(() => d.kept());
    const apiTotal = [...statuses.values()].reduce((a, b) => a + b, 0);
    const duringTakeover = unavailableAt.filter((at) => at >= takeover.from && at <= takeover.to).length;
    const fiveXX = [...statuses].filter(([s]) => s >= 500 || s === 0).reduce((a, [, n]) => a + n, 0) - duringTakeover;
    console.log(CLUSTER
      ? `load: ${CALLS} calls at once (peak ${t.peakActive}) for ${SECONDS} s, each a full attended transfer; two Asterisk servers, two konami instances (distributed mode)`
      : `load: ${CALLS} calls at once (peak ${t.peakActive}) for ${SECONDS} s, each a full attended transfer; konami as its own process`);
    if (happened) console.log(`    halfway: ${happened}`);
    console.log(`    completed: ${t.completed}, failed: ${t.failed.length}${CLUSTER ? `; digits pressed again after reaching no instance: ${t.pressedAgain}` : ''}`);
    const why = new Map<string, number>();
    for (const f of t.failed) why.set(f, (why.get(f) ?? 0) + 1);
    for (const [f, k] of [...why].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`    failure (${k}x): ${f}`);
    console.log(`    transfer set-up, final digit to target dialled, by Asterisk's event times (konami's log): ${summary(d.logs.flatMap(setUpTimes), 'ms', 0)}`);
    console.log(`    transfer set-up as the phones see it (harness's clock, with its DTMF timing): ${summary(t.setupMs, 'ms', 1)}`);
    console.log(`    API: ${apiTotal} requests (${(apiTotal / wall).toFixed(0)}/s) by status: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; 5xx or no answer${CLUSTER ? ` outside the takeover (503 with Retry-After while no instance drove the first server: ${duringTakeover})` : ''}: ${fiveXX}`);
    const share = (used: number) => `${((100 * used) / wall).toFixed(0)}% of one core`;
    console.log(`    konami peak RSS${CLUSTER ? ' (the surviving instance)' : ''}: ${(stat.rssPeakKb / 1024).toFixed(1)} MB; CPU ${konamiCpu.toFixed(1)} s over ${wall.toFixed(0)} s (${share(konamiCpu)})`);
    console.log(`    Asterisk CPU${CLUSTER ? ' (both servers)' : ''}: ${asteriskUsed.toFixed(1)} s (${share(asteriskUsed)}); the machine has 2 cores`);
    console.log(`    afterwards: ${leftOver || 'no channel left in Asterisk'}; call states kept: ${kept}`);
    if (t.failed.length > 0 || fiveXX > 0 || kept > 0 || leftOver || t.completed === 0) process.exitCode = 1;
  } finally {
    for (const p of phones) {
      await p.reset();
      await p.stop();
    }
    await d.close();
  }
});

/** The set-up times konami logged ("transfer target dialled", setup_ms). */
function setUpTimes(logFile: string): number[] {
  const out: number[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"transfer target dialled"')) continue;
    const ms = (JSON.parse(line) as { setup_ms?: number }).setup_ms;
    if (typeof ms === 'number') out.push(ms);
  }
  return out;
}
