// Global setup of the integration suite: the sandbox Asterisk is started when
// it is not running, and stopped at the end only if this run started it.
import { sandbox, sandboxRunning } from '../harness/sandbox.js';

let startedHere = false;

export function mochaGlobalSetup(): void {
  if (sandboxRunning()) return;
  sandbox('start');
  startedHere = true;
}

export function mochaGlobalTeardown(): void {
  if (startedHere && !process.env.KONAMI_KEEP_SANDBOX) sandbox('stop');
}
