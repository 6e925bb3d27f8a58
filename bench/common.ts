// What the benchmark scripts share: the sandbox Asterisk (started when not
// running, stopped after if started here) and plain statistics.
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
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number (got ${JSON.stringify(v)})`);
  return n;
}
