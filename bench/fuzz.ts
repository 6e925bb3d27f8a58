// Fuzz: malformed API requests and random DTMF storms against konami as its
// own process on the sandbox Asterisk, bounded in count and time.
//
// (1) FUZZ_REQUESTS (default 3000) requests made of random methods, routes,
//     headers, tokens and bodies (broken JSON, wrong types, huge or deeply
//     nested bodies, hostile regexes in metaflows...): none may get a 5xx or
//     no answer, and konami must still be healthy afterwards.
// (2) FUZZ_CALLS (default 10) live calls whose two parties press random
//     digits (0-9, *, #, A-D) with random timing for FUZZ_SECONDS (default
//     20); the storms start transfers to numbers nobody answers and cancel
//     them. Afterwards every call must be back to its two parties in its own
//     bridge, pass digits end to end, and hang up leaving nothing behind.
//     The account's metaflows then hold, beside *21 and *22, as many of the
//     most expensive patterns as its budget admits, and the storms include
//     the binding digit followed by 32 digits.
// (3) FUZZ_METAFLOWS (default 300) hostile metaflows through the API (nested
//     repetitions, a hundred groups, wide alternations, a hundred codes,
//     budgets overshot by a little and by far): each answered 200, 400 or 413.
// (4) FUZZ_TOKENS (default 300) rounds of token churn: sign in, use, sign
//     out, use again (401), forged and re-spelt tokens: never a 5xx, a
//     signed-out token never works again, the account file stays small.
// (5) FUZZ_DEEP (default 200) bodies nested up to 30,000 levels, objects and
//     arrays: 4xx only, and no temporary file left behind.
// Throughout, konami's event loop delay is read from /metrics: its worst
// must stay under 50 ms.
//
// Random choices come from FUZZ_SEED (printed), so a failing run can be
// replayed.   npm run fuzz
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { eventually, konamiBridges } from '../test/harness/asterisk.js';
import { side } from '../test/harness/bridges.js';
import { apiToken, dataDirWithAccount } from '../test/harness/process.js';
import { Phones, type Phone } from '../test/harness/phones.js';
import { intEnv, startKonamiProcess, stopKonamiProcess, withSandbox } from './common.js';

mkdirSync('test-output', { recursive: true });
const REQUESTS = intEnv('FUZZ_REQUESTS', 3000);
const CALLS = intEnv('FUZZ_CALLS', 10);
const SECONDS = intEnv('FUZZ_SECONDS', 20);
const SEED = intEnv('FUZZ_SEED', Math.floor(Math.random() * 2 ** 31));
const METAFLOWS = intEnv('FUZZ_METAFLOWS', 300);
const TOKENS = intEnv('FUZZ_TOKENS', 300);
const DEEP = intEnv('FUZZ_DEEP', 200);
const LOOP_DELAY_LIMIT_MS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small seeded generator (mulberry32), so a run can be replayed. */
let state = SEED;
function random(): number {
  state = (state + 0x6d2b79f5) | 0;
  let x = Math.imul(state ^ (state >>> 15), 1 | state);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const chars = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
const junk = (n: number) => chars('abcXYZ019 _-./%\\"\'{}[]:,\u0000\u00e9\u4e2d\ud83d\ude00<>&;=?#*', n);

function randomValue(depth = 0): unknown {
  switch (int(depth > 3 ? 5 : 8)) {
    case 0: return null;
    case 1: return int(2) === 0;
    case 2: return pick([0, -1, 1e308, 2 ** 53 + 1, 3.14, -0]);
    case 3: return junk(int(40));
    case 4: return chars('0123456789*#', int(70));
    case 5: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    default: return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['data', 'action', 'target', 'api_key', junk(6)]), randomValue(depth + 1)]));
  }
}

function nested(depth: number): string {
  return '{"data":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function randomMetaflows(): unknown {
  return {
    data: pick([
      { binding_digit: pick(['*', '#', 'x', '', 5, null]) },
      { digit_timeout: pick([-1, 0, 1e9, 'soon', 2000]) },
      { listen_on: pick(['a', 'b', 'both', 'c', 7]) },
      { patterns: { [pick(['(a+)+$', '(\\d+)*$', '([0-9]|[0-9])*#', '[', '21(\\d+)', '(?<x>1)\\k<x>', '.*'.repeat(20)])]: { module: pick(['transfer', 'resume', 'nope', 5]) } } },
      { numbers: { [pick(['22', '', 'abc', '2'.repeat(100)])]: pick([{ module: 'resume' }, { module: 'x' }, 'resume', null]) } },
      randomValue(),
    ]),
  };
}

interface Req { method: string; path: string; headers: Record<string, string>; body?: string }

function randomRequest(account: string, token: string, callId: string | undefined): Req {
  const ids = [account, 'nope', junk(8), '..%2f..', '%00', 'a'.repeat(300), '00000000000000000000000000000000'];
  const calls = [callId ?? 'x', junk(10), 'konami-' + junk(5), '%ff%fe'];
  const path = pick([
    () => `/v1/accounts/${pick(ids)}/channels`,
    () => `/v1/accounts/${pick(ids)}/channels/${pick(calls)}`,
    () => `/v1/accounts/${pick(ids)}/metaflows`,
    () => '/v1/api_auth',
    () => `/v1/${junk(int(20))}`,
    () => `/${junk(int(30))}`,
    () => `/v1/accounts/${account}/channels?auth_token=${pick([token, junk(20), ''])}`,
    () => '/v1/openapi.json',
  ])();
  const headers: Record<string, string> = {};
  const tokenChoice = int(6);
  if (tokenChoice === 0) headers['x-auth-token'] = token;
  else if (tokenChoice === 1) headers['x-auth-token'] = token.slice(0, -3) + 'abc';
  else if (tokenChoice === 2) headers['x-auth-token'] = junk(int(200)).replace(/[^\x21-\x7e]/g, 'x');
  else if (tokenChoice === 3) headers['x-auth-token'] = 'x'.repeat(8000);
  if (int(3) > 0) headers['content-type'] = pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x']);
  const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST', 'POST']);
  let body: string | undefined;
  if (method !== 'GET' && method !== 'HEAD') {
    body = pick([
      () => JSON.stringify({ data: { action: pick(['transfer', 'cancel', 'hangup', 'fly', '', 5]), target: randomValue() } }),
      () => JSON.stringify(randomMetaflows()),
      () => JSON.stringify({ data: { api_key: randomValue() } }),
      () => JSON.stringify(randomValue()),
      () => '{"data": {"action": "transfer", "target": "26',
      () => nested(int(5000)),
      () => `{"data": "${'x'.repeat(70_000 + int(100_000))}"}`,
      () => junk(int(500)),
      () => '',
    ])();
  }
  return { method, path, headers, body };
}

async function apiFuzz(base: string, account: string, token: string, callId: string | undefined): Promise<boolean> {
  const statuses = new Map<number, number>();
  const bad: string[] = [];
  const started = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const r = randomRequest(account, token, callId);
    try {
      const res = await fetch(base + r.path, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) bad.push(`${res.status} for ${r.method} ${r.path.slice(0, 80)} body ${String(r.body).slice(0, 80)}`);
    } catch (err) {
      bad.push(`no answer for ${r.method} ${r.path.slice(0, 80)}: ${(err as Error).message}`);
    }
  }
  const healthy = (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200;
  console.log(`(1) ${REQUESTS} malformed API requests in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`    by status: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
  console.log(`    5xx or no answer: ${bad.length}; konami healthy afterwards: ${healthy}`);
  for (const b of bad.slice(0, 10)) console.log(`    bad: ${b}`);
  return bad.length === 0 && healthy;
}

async function storm(phone: Phone, until: number): Promise<number> {
  let pressed = 0;
  while (performance.now() < until) {
    // Plain noise, or something that starts like a code: a transfer to a number
    // nobody answers, a cancel, a half code, a code cut short by another *.
    const digits = pick([
      () => chars('0123456789*#ABCD', 1 + int(12)),
      () => `*21${chars('0123456789', int(8))}${pick(['#', '', '*', '9'])}`,
      () => pick(['*22', '*2', '**', '*9', '#', '*21#', '*2*21']),
      () => `*${chars('0123456789', 32)}`,
    ])();
    const duration = 40 + int(200);
    const between = 40 + int(200);
    await phone.press(digits, between, duration).catch(() => undefined);
    pressed += digits.length;
    await sleep(int(1500));
  }
  return pressed;
}

async function dtmfFuzz(phones: Phones, account: string, konamiAlive: () => boolean, transfersStarted: () => Promise<number>): Promise<boolean> {
  const calls: Array<{ alice: Phone; bob: Phone }> = [];
  for (let i = 0; i < CALLS; i++) {
    const to = `${7_100_000 + i}`;
    const alice = await phones.call(to, { account, from: { number: `${7_200_000 + i}`, name: 'Alice' } });
    const bob = await phones.incoming(to, 20_000);
    await bob.answer();
    await alice.waitState('Up', 20_000);
    calls.push({ alice, bob });
  }
  const until = performance.now() + SECONDS * 1000;
  const pressed = (await Promise.all(calls.flatMap(({ alice, bob }) => [storm(alice, until), storm(bob, until)]))).reduce((a, b) => a + b, 0);
  // Transfers the storms started ring nobody: they fail after their 5 s ring timeout.
  const harmed: string[] = [];
  await eventually(async () => {
    const bridges = await konamiBridges(phones.ari);
    return calls.filter(({ alice, bob }) => {
      const mine = bridges.filter((b) => b.name.startsWith(`konami/${alice.peerId}`));
      return !(mine.length === 1 && JSON.stringify([...mine[0]!.channels].sort()) === JSON.stringify([alice.peerId!, side(bob)].sort()));
    }).length;
  }, (n) => n === 0, 'every call back to its two parties', 20_000, 500).catch((err) => harmed.push((err as Error).message));
  for (const [i, { alice, bob }] of calls.entries()) {
    const mark = `${i % 10}`;
    bob.heard = '';
    await alice.press(`#${mark}`, 120, 120);
    await bob.waitHeard(mark, 10_000).catch(() => harmed.push(`call ${i}: Bob does not hear Alice's digit any more`));
  }
  const alive = konamiAlive();
  for (const { alice, bob } of calls) {
    await alice.hangup().catch(() => undefined);
    await bob.waitHangup(10_000).catch(() => harmed.push(`Bob of ${alice.peerId} not hung up`));
  }
  await eventually(async () => (await phones.ari.listChannels()).map((c) => c.name), (l) => l.length === 0, 'every channel gone', 20_000, 250)
    .catch((err) => harmed.push((err as Error).message));
  await eventually(async () => (await phones.ari.listBridges()).length, (n) => n === 0, 'every bridge gone', 10_000, 250)
    .catch((err) => harmed.push((err as Error).message));
  const started = await transfersStarted();
  console.log(`(2) DTMF storms on ${CALLS} live calls for ${SECONDS} s: ${pressed} random digits pressed by both parties; ${started} transfers started by them`);
  console.log(`    calls harmed: ${harmed.length}; konami alive: ${alive}; afterwards nothing left in Asterisk: ${harmed.length === 0}`);
  for (const h of harmed.slice(0, 10)) console.log(`    harmed: ${h}`);
  return harmed.length === 0 && alive;
}

/** The worst event loop delay konami reported (over its last 10 to 20 s) at any scrape of /metrics during the fuzz. */
let worstLoopMs = 0;
async function scrape(base: string): Promise<string> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const max = Number(/^konami_event_loop_delay_seconds\{quantile="1"\} (\S+)$/m.exec(text)?.[1] ?? 0) * 1000;
  worstLoopMs = Math.max(worstLoopMs, max);
  return text;
}

async function send(base: string, method: string, path: string, token: string | undefined, body?: string): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['x-auth-token'] = token;
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return res.status;
}

/** A hostile pattern of one of the shapes that stalled calls before there was a budget. */
function hostilePattern(): string {
  const k = () => 1 + int(32);
  return pick([
    () => `${'()'.repeat(int(120))}((\\d?){${k()}}){${k()}}ABC`,
    () => `(?:(?:\\d?){${k()}}){${k()}}${int(100)}`,
    () => `(?:${Array.from({ length: 1 + int(120) }, () => chars('0123456789', 1 + int(3))).join('|')})*`.slice(0, 256),
    () => `${'(1?)'.repeat(1 + int(20))}\\d{${k()}}`,
    () => `\\d{${k()}}\\d{${k()}}`,
    () => `(((\\d*)*)*)*${int(10)}`,
    () => chars('0123456789*#()?|\\d{},', 1 + int(255)),
  ])();
}

async function metaflowsFuzz(base: string, account: string, token: string): Promise<boolean> {
  const statuses = new Map<number, number>();
  const bad: string[] = [];
  for (let i = 0; i < METAFLOWS; i++) {
    const patterns: Record<string, unknown> = {};
    for (let n = 1 + int(pick([3, 20, 100, 1200])); n > 0; n--) patterns[hostilePattern()] = { module: pick(['resume', 'transfer']) };
    const status = await send(base, 'POST', `/v1/accounts/${account}/metaflows`, token, JSON.stringify({ data: { patterns } }))
      .catch((err: Error) => (bad.push(err.message), 0));
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    // 413: a body over 64 KB (a thousand patterns) is refused before it is read.
    if (status !== 200 && status !== 400 && status !== 413) bad.push(`${status} for ${Object.keys(patterns).length} patterns`);
  }
  console.log(`(3) ${METAFLOWS} hostile metaflows: by status ${JSON.stringify(Object.fromEntries(statuses))}; other answers: ${bad.length}`);
  for (const b of bad.slice(0, 5)) console.log(`    bad: ${b}`);
  return bad.length === 0;
}

async function tokenFuzz(base: string, account: string, apiKey: string, dataDir: string): Promise<boolean> {
  const bad: string[] = [];
  const path = `/v1/accounts/${account}/channels`;
  for (let i = 0; i < TOKENS; i++) {
    const token = await apiToken(base, apiKey);
    const [v, payload, sig] = token.split('.') as [string, string, string];
    const respelt = `${v}.${payload}.${sig.slice(0, -1)}${sig.at(-1) === 'A' ? 'B' : 'A'}`;
    const checks: Array<[string, string | undefined, number]> = [
      ['GET', token, 200], ['GET', respelt, 401], ['GET', `${token}x`, 401], ['GET', junk(int(60)).replace(/[^\x21-\x7e]/g, 'x'), 401],
      ['DELETE', token, 200], ['GET', token, 401], ['DELETE', token, 401],
    ];
    for (const [method, t, want] of checks) {
      const status = await send(base, method, method === 'DELETE' ? '/v1/token_auth' : path, t).catch(() => 0);
      if (status !== want) bad.push(`${method} answered ${status}, expected ${want}`);
    }
  }
  const size = statSync(join(dataDir, 'accounts', `${account}.json`)).size;
  console.log(`(4) ${TOKENS} rounds of token churn (sign in, use, re-spelt, forged, sign out, reuse): unexpected answers ${bad.length}; account file ${size} bytes`);
  for (const b of bad.slice(0, 5)) console.log(`    bad: ${b}`);
  return bad.length === 0;
}

async function deepFuzz(base: string, account: string, token: string, dataDir: string): Promise<boolean> {
  const statuses = new Map<number, number>();
  const bad: string[] = [];
  for (let i = 0; i < DEEP; i++) {
    const depth = pick([17, 100, 1000, 10_000, 30_000, 1 + int(30_000)]);
    const open = Array.from({ length: depth }, () => pick(['[', '{"a":'])).join('');
    const close = [...open.matchAll(/\[|\{"a":/g)].map((m) => (m[0] === '[' ? ']' : '}')).reverse().join('');
    const body = pick([
      () => `{"data": {"numbers": {"22": {"module": "resume", "data": ${open}1${close}}}}}`,
      () => `{"data": {"action": "transfer", "target": ${open}1${close}}}`,
      () => `${open}1${close}`,
    ])();
    const path = pick([`/v1/accounts/${account}/metaflows`, `/v1/accounts/${account}/channels/x`, '/v1/api_auth']);
    const status = await send(base, 'POST', path, token, body).catch(() => 0);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status < 400 || status >= 500) bad.push(`${status} for depth ${depth} to ${path}`);
  }
  const left = readdirSync(join(dataDir, 'accounts')).filter((n) => !n.endsWith('.json'));
  console.log(`(5) ${DEEP} deeply nested bodies: by status ${JSON.stringify(Object.fromEntries(statuses))}; not 4xx: ${bad.length}; files left beside the accounts: ${left.length}`);
  for (const b of bad.slice(0, 5)) console.log(`    bad: ${b}`);
  return bad.length === 0 && left.length === 0;
}

/** The transfer codes, and as many of the most expensive patterns as the budget leaves room for. */
function worstAcceptedMetaflows(): object {
  const patterns: Record<string, unknown> = {
    '21(\\d+)': { module: 'transfer', data: { ring_timeout: 5, recall_attempts: 0 } },
  };
  for (let i = 0; i < 18; i++) patterns[`(?:(?:\\d?){31}){7}${String(i).padStart(2, '0')}`] = { module: 'resume' };
  return { digit_timeout: 1000, numbers: { 22: { module: 'resume' } }, patterns };
}

await withSandbox(async (env) => {
  console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} replays this run)`);
  const { dataDir, account, apiKey } = await dataDirWithAccount('fuzz', {
    digit_timeout: 1000,
    numbers: { 22: { module: 'resume' } },
    patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 5, recall_attempts: 0 } } },
  });
  const konami = await startKonamiProcess(env, dataDir, 'test-output/fuzz-konami.log', { RATE_LIMIT: '100000' });
  const base = `http://127.0.0.1:${konami.httpPort}`;
  const phones = await Phones.connect(env);
  await phones.reset();
  try {
    const token = await apiToken(base, apiKey);
    // One live call, so that requests naming a real call id reach the call logic too.
    const alice = await phones.call('7000001', { account: account });
    const bob = await phones.incoming('7000001', 20_000);
    await bob.answer();
    await alice.waitState('Up', 20_000);
    await scrape(base);
    const watcher = setInterval(() => void scrape(base).catch(() => undefined), 2000);
    const apiOk = await apiFuzz(base, account, token, alice.peerId);
    await alice.hangup().catch(() => undefined);
    await bob.waitHangup(10_000).catch(() => undefined);
    const metaflowsOk = await metaflowsFuzz(base, account, token);
    const tokensOk = await tokenFuzz(base, account, apiKey, dataDir);
    const deepOk = await deepFuzz(base, account, token, dataDir);
    const saved = await send(base, 'POST', `/v1/accounts/${account}/metaflows`, token, JSON.stringify({ data: worstAcceptedMetaflows() }));
    if (saved !== 200) throw new Error(`the most expensive accepted metaflows were refused (${saved})`);
    const transfersStarted = async () => Number(/^konami_transfers_started_total (\d+)$/m.exec(await scrape(base))?.[1] ?? 0);
    const dtmfOk = await dtmfFuzz(phones, account, () => konami.exitCode === null, transfersStarted);
    clearInterval(watcher);
    await scrape(base);
    const kept = readdirSync(join(dataDir, 'calls')).length;
    console.log(`    call states kept afterwards: ${kept}`);
    const loopOk = worstLoopMs < LOOP_DELAY_LIMIT_MS;
    console.log(`konami's event loop delay at its worst during the fuzz: ${worstLoopMs.toFixed(1)} ms (limit ${LOOP_DELAY_LIMIT_MS} ms)`);
    if (!apiOk || !metaflowsOk || !tokensOk || !deepOk || !dtmfOk || kept > 0 || !loopOk) process.exitCode = 1;
  } finally {
    await phones.reset();
    await phones.stop();
    await stopKonamiProcess(konami);
  }
});
