// What the benchmark scripts share: the sandbox Asterisk (started when not
// running, stopped after if started here), konami as its own process, and
// plain statistics.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { eventually } from '../test/harness/asterisk.js';
import { PHONES_TEMPLATE } from '../test/harness/konami.js';
import { freePort } from '../test/harness/process.js';
import { sandbox, sandboxEnv, sandboxRunning, type SandboxEnv } from '../test/harness/sandbox.js';

export async function withSandbox<T>(fn: (env: SandboxEnv) => Promise<T>): Promise<T> {
  const startedHere = !sandboxRunning();
  if (startedHere) sandbox('start');
  try {
    return await fn(sandboxEnv());
  } finally {
    if (startedHere) sandbox('stop');
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summary(samples: readonly number[], unit = 'ms', digits = 2): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(digits);
  return `n=${s.length} median=${f(percentile(s, 50))}${unit} p95=${f(percentile(s, 95))}${unit} min=${f(s[0] ?? NaN)}${unit} max=${f(s[s.length - 1] ?? NaN)}${unit}`;
}

export function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (got ${JSON.stringify(v)})`);
  return n;
}

/** A process's peak resident memory and the CPU seconds it used so far (Linux /proc). */
export function procStat(pid: number): { rssPeakKb: number; cpuSeconds: number; userSeconds: number; systemSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]) / 100; // utime, in clock ticks of 1/100 s
  const system = Number(fields[12]) / 100; // stime
  return { rssPeakKb: hwm, cpuSeconds: user + system, userSeconds: user, systemSeconds: system };
}

/**
 * Every process a benchmark started is ended with it when it ends by itself,
 * fails, or is stopped by Ctrl-C, SIGTERM or SIGHUP (a SIGKILL of the
 * benchmark cannot be caught: its children are then left): a konami left
 * behind would stay connected to the sandbox under the application name
 * `konami` and take it from whatever runs next (a test run's konami then hears
 * nothing; this happened).
 */
const children = new Set<ChildProcess>();
let reaping = false;
export function endWithThisProcess(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!reaping) {
    reaping = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        for (const c of children) c.kill('SIGKILL');
        process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
      });
    }
  }
  return child;
}

/** konami from the build (dist/), as production runs it, dialling the harness's phones; resolves when ready. */
export async function startKonamiProcess(
  env: SandboxEnv, dataDir: string, logFile: string, extra: Record<string, string> = {},
): Promise<ChildProcess & { httpPort: number }> {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: konami writes a V8 CPU profile there when it stops (read with bench/profile.ts).
  const prof = process.env['BENCH_CPU_PROF'];
  const args = [...nodeFlags(), ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])];
  const child = spawn(process.execPath, [...args, 'dist/lib/main.js'], {
    env: {
      ...process.env, ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: env.password,
      DATA_DIR: dataDir, DIAL_TEMPLATE: PHONES_TEMPLATE, RECALL_CALLERS: 'number', HTTP_PORT: String(port), LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'info',
      SHUTDOWN_CALLS: 'hangup',
      // One account places every benchmark call: the operator's limit on transfers an account starts is lifted.
      TRANSFERS_PER_MINUTE: '100000', TRANSFERS_BURST: '100000', TRANSFERS_PER_CALL: '1000',
      ...extra,
    },
    stdio: ['ignore', openSync(logFile, 'w'), 'inherit'],
  });
  endWithThisProcess(child);
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status,
    (s) => s === 200, 'konami to be ready', 15_000, 100);
  return Object.assign(child, { httpPort: port });
}

/** Node's flags for konami's process, as `npm start` gives them (scripts/node-flags). */
export function nodeFlags(): string[] {
  // As scripts/start.sh reads them: # starts a comment; blank lines and CRs ignored.
  return readFileSync('scripts/node-flags', 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
}

/** SIGTERM, and wait for the process to end. */
export async function stopKonamiProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}
