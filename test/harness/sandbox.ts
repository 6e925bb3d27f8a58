// The sandbox Asterisk as the tests see it: started by the integration suite's
// global setup (sandbox/asterisk.sh), reached with the credentials it made.
import { sandbox as run, sandboxEnv as envOf, type SandboxEnv } from '../../lib/demo/sandbox.js';

export type { SandboxEnv };

export function sandbox(...args: string[]): string {
  return run(args);
}

/**
 * A second sandbox Asterisk from the same root (its own ports, run folder
 * and password), for distributed mode's tests: `start`, `stop`, `env`...
 */
export function secondSandbox(...args: string[]): string {
  return run(args, { ...process.env, KONAMI_SANDBOX_INSTANCE: '2' });
}

export function sandboxRunning(of: (...args: string[]) => string = sandbox): boolean {
  try {
    of('status');
    return true;
  } catch {
    return false;
  }
}

export function sandboxEnv(of: (...args: string[]) => string = sandbox): SandboxEnv {
  return envOf((args) => of(...args));
}

/** The running sandbox Asterisk's process id (for its CPU in benchmarks). */
export function sandboxPid(): number {
  const pid = Number(sandbox('pid').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('the sandbox Asterisk is not running');
  return pid;
}
