// The sandbox Asterisk as the tests see it: started by the integration suite's
// global setup (sandbox/asterisk.sh), reached with the credentials it made.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface SandboxEnv {
  url: string;
  username: string;
  password: string;
}

const script = fileURLToPath(new URL('../../sandbox/asterisk.sh', import.meta.url));

export function sandbox(...args: string[]): string {
  return execFileSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/**
 * A second sandbox Asterisk from the same root (its own ports, run folder
 * and password), for distributed mode's tests: `start`, `stop`, `env`...
 */
export function secondSandbox(...args: string[]): string {
  return execFileSync('bash', [script, ...args], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, KONAMI_SANDBOX_INSTANCE: '2' },
  });
}

export function sandboxRunning(run: (...args: string[]) => string = sandbox): boolean {
  try {
    run('status');
    return true;
  } catch {
    return false;
  }
}

export function sandboxEnv(run: (...args: string[]) => string = sandbox): SandboxEnv {
  const vars = Object.fromEntries(
    run('env')
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  return { url: vars.ARI_URL!, username: vars.ARI_USERNAME!, password: vars.ARI_PASSWORD! };
}

/** The running sandbox Asterisk's process id (for its CPU in benchmarks). */
export function sandboxPid(): number {
  const pid = Number(sandbox('pid').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('the sandbox Asterisk is not running');
  return pid;
}
