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
//   npm run load              LOAD_CALLS=200 LOAD_SECONDS=90 LOAD_API_CLIENTS=4 LOAD_TALK_MS=
import { mkdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { eventually } from '../test/harness/asterisk.js';
import { apiToken, dataDirWithAccount, keptCalls } from '../test/harness/process.js';
import { sandboxPid } from '../test/harness/sandbox.js';
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

interface Tally {
  completed: number;
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
    const alice = await phones.call(bobNumber, { account, from: { number: `6${slot}`, name: 'Alice' } });
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
    const mary = await phones.incoming(maryNumber, 30_000);
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
    await mary.waitHeard('7', 20_000);
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

/** One API client: lists the account's calls, and now and then sends a request konami must refuse. */
async function apiClient(base: string, account: string, token: string, until: number, statuses: Map<number, number>): Promise<void> {
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
    } catch {
      statuses.set(0, (statuses.get(0) ?? 0) + 1);
    }
    await sleep(20);
  }
}

await withSandbox(async (env) => {
  const { dataDir, account, apiKey } = await dataDirWithAccount('load', {
    numbers: { 22: { module: 'resume' } },
    patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 60 } } },
  });
  const konami = await startKonamiProcess(env, dataDir, 'test-output/load-konami.log', { RATE_LIMIT: '100000' });
  const base = `http://127.0.0.1:${konami.httpPort}`;
  const phones = await Phones.connect(env);
  await phones.reset();
  const t: Tally = { completed: 0, failed: [], setupMs: [], active: 0, peakActive: 0 };
  const statuses = new Map<number, number>();
  try {
    const token = await apiToken(base, apiKey);
    console.error(`load: ${CALLS} calls at once for ${SECONDS} s, ${API_CLIENTS} API clients; konami pid ${konami.pid}`);
    const started = performance.now();
    const until = started + SECONDS * 1000;
    const cpuBefore = procStat(konami.pid!).cpuSeconds;
    const asterisk = sandboxPid();
    const asteriskBefore = procStat(asterisk).cpuSeconds;
    const report = setInterval(() => {
      console.error(`load: ${((performance.now() - started) / 1000).toFixed(0)} s: ${t.active} calls up, ${t.completed} completed, ${t.failed.length} failed`);
    }, 10_000);
    const api = Array.from({ length: API_CLIENTS }, () => apiClient(base, account, token, until, statuses));
    const slots = Array.from({ length: CALLS }, async (_, slot) => {
      await sleep(slot * 100); // ramp up over CALLS/10 seconds
      for (let n = 0; performance.now() < until; n++) await oneCall(phones, { base, account, token }, slot, n, t);
    });
    await Promise.all([...slots, ...api]);
    clearInterval(report);
    const wall = (performance.now() - started) / 1000;
    const stat = procStat(konami.pid!);
    const asteriskCpu = procStat(asterisk).cpuSeconds - asteriskBefore;
    const leftOver = await eventually(async () => (await phones.ari.listChannels()).length, (n) => n === 0, 'every channel gone', 30_000, 250)
      .then(() => '', (err: Error) => err.message);
    // konami forgets a call a moment after its last channel is gone.
    const kept = await eventually(async () => (await keptCalls(dataDir)).length, (k) => k === 0, 'no call state kept', 10_000, 250)
      .catch(async () => (await keptCalls(dataDir)).length);
    const apiTotal = [...statuses.values()].reduce((a, b) => a + b, 0);
    const fiveXX = [...statuses].filter(([s]) => s >= 500 || s === 0).reduce((a, [, n]) => a + n, 0);
    console.log(`load: ${CALLS} calls at once (peak ${t.peakActive}) for ${SECONDS} s, each a full attended transfer; konami as its own process`);
    console.log(`    completed: ${t.completed}, failed: ${t.failed.length}`);
    const why = new Map<string, number>();
    for (const f of t.failed) why.set(f, (why.get(f) ?? 0) + 1);
    for (const [f, k] of [...why].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`    failure (${k}x): ${f}`);
    console.log(`    transfer set-up, final digit to target dialled, by Asterisk's event times (konami's log): ${summary(setUpTimes('test-output/load-konami.log'), 'ms', 0)}`);
    console.log(`    transfer set-up as the phones see it (harness's clock, with its DTMF timing): ${summary(t.setupMs, 'ms', 1)}`);
    console.log(`    API: ${apiTotal} requests (${(apiTotal / wall).toFixed(0)}/s) by status: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; 5xx or no answer: ${fiveXX}`);
    const share = (cpu: number) => `${((100 * cpu) / wall).toFixed(0)}% of one core`;
    console.log(`    konami peak RSS: ${(stat.rssPeakKb / 1024).toFixed(1)} MB; CPU ${(stat.cpuSeconds - cpuBefore).toFixed(1)} s over ${wall.toFixed(0)} s (${share(stat.cpuSeconds - cpuBefore)})`);
    console.log(`    Asterisk CPU: ${asteriskCpu.toFixed(1)} s (${share(asteriskCpu)}); the machine has 2 cores`);
    console.log(`    afterwards: ${leftOver || 'no channel left in Asterisk'}; call states kept: ${kept}`);
    if (t.failed.length > 0 || fiveXX > 0 || kept > 0 || leftOver || t.completed === 0) process.exitCode = 1;
  } finally {
    await phones.reset();
    await phones.stop();
    await stopKonamiProcess(konami);
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
