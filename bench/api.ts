// Benchmark of the HTTP API layer: requests per second and p95 latency for an
// authenticated GET .../channels and for a POST rejected by validation, next
// to a bare Koa handler measured in the same run, as a ratio (of requests per
// second, and of the server's CPU per request from /proc). The servers run
// in a child process; this process only sends requests (keep-alive, fixed
// concurrency), so the client's own cost does not count against the server.
//
//   npm run bench:api          BENCH_SECONDS=5 BENCH_CONCURRENCY=16 BENCH_ROUNDS=10
import { fork } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { endWithThisProcess, intEnv, nodeFlags, percentile, procStat } from './common.js';

const SECONDS = intEnv('BENCH_SECONDS', 5);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16);
const ROUNDS = Math.max(1, intEnv('BENCH_ROUNDS', 10));

interface Ports { api: number; bare: number; token: string; account: string }

interface Load { rps: number; p95: number; median: number; statuses: Record<string, number>; cpuUs: number }

/** One kind of request's results, summed over its slices. */
class Tally {
  readonly latencies: number[] = [];
  readonly statuses: Record<string, number> = {};
  seconds = 0;
  cpu = 0;

  result(): Load {
    const l = [...this.latencies].sort((a, b) => a - b);
    return { rps: l.length / this.seconds, p95: percentile(l, 95), median: percentile(l, 50), statuses: this.statuses, cpuUs: (this.cpu / l.length) * 1e6 };
  }
}

interface Target { port: number; method: string; path: string; headers: Record<string, string>; body?: string }

let serverPid = 0;

/** Sends `t` from CONCURRENCY keep-alive clients for `ms`, adding what it measured to `tally`. */
async function slice(t: Target, ms: number, tally: Tally): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const end = performance.now() + ms;
  const one = () => new Promise<void>((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port: t.port, method: t.method, path: t.path, headers: t.headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        tally.latencies.push(performance.now() - t0);
        tally.statuses[String(res.statusCode)] = (tally.statuses[String(res.statusCode)] ?? 0) + 1;
        resolve();
      });
    });
    req.on('error', reject);
    req.end(t.body);
  });
  const worker = async () => {
    while (performance.now() < end) await one();
  };
  const started = performance.now();
  const cpuFrom = procStat(serverPid).cpuSeconds;
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  tally.cpu += procStat(serverPid).cpuSeconds - cpuFrom;
  tally.seconds += (performance.now() - started) / 1000;
  agent.destroy();
}

const child = fork(fileURLToPath(new URL('./api-server.ts', import.meta.url)), [], { execArgv: [...nodeFlags(), '--import', 'tsx', ...(process.env['BENCH_CPU_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`] : [])] });
endWithThisProcess(child);
serverPid = child.pid!;
const ports = await new Promise<Ports>((resolve) => child.once('message', (m) => resolve(m as Ports)));
try {
  const auth = { 'x-auth-token': ports.token };
  const json = { ...auth, 'content-type': 'application/json' };
  const bad = JSON.stringify({ data: { action: 'transfer', target: '26&00' } });
  const targets: Target[] = [
    { port: ports.bare, method: 'GET', path: '/', headers: {} },
    { port: ports.api, method: 'GET', path: `/v1/accounts/${ports.account}/channels`, headers: auth },
    { port: ports.api, method: 'POST', path: `/v1/accounts/${ports.account}/channels/alice-1`, headers: json, body: bad },
  ];
  // A short warm-up so the JIT has seen every path.
  for (const t of targets) await slice(t, 1000, new Tally());
  // The kinds take turns in short slices, so that a change in the machine's load weighs on each alike.
  const tallies = targets.map(() => new Tally());
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, t] of targets.entries()) await slice(t, (SECONDS * 1000) / ROUNDS, tallies[i]!);
  }
  const [bare, list, rejected] = tallies.map((t) => t.result()) as [Load, Load, Load];
  const row = (name: string, l: Load) =>
    console.log(`  ${name.padEnd(44)} ${l.rps.toFixed(0).padStart(6)} req/s  median ${l.median.toFixed(2)} ms  p95 ${l.p95.toFixed(2)} ms  ${JSON.stringify(l.statuses)}  server CPU ${l.cpuUs.toFixed(0)} µs/req  ratio to bare ${(l.rps / bare.rps).toFixed(2)} (by CPU ${(bare.cpuUs / l.cpuUs).toFixed(2)})`);
  console.log(`HTTP API, ${CONCURRENCY} concurrent keep-alive clients, ${SECONDS} s each in ${ROUNDS} turns (servers in their own process)`);
  row('bare Koa handler', bare);
  row('GET /v1/accounts/{id}/channels (token)', list);
  row('POST .../channels/{id} rejected (400)', rejected);
  if (!list.statuses['200'] || !rejected.statuses['400']) process.exitCode = 1;
} finally {
  child.kill();
}
