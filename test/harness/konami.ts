// konami itself, started in the test process against the sandbox Asterisk.
import { createWriteStream, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { startKonami, type Konami, type StartOptions } from '../../lib/main.js';
import type { SandboxEnv } from './sandbox.js';

export const OUTPUT_DIR = join(process.cwd(), 'test-output');
mkdirSync(OUTPUT_DIR, { recursive: true });
const logStream = createWriteStream(join(OUTPUT_DIR, 'konami-integration.log'), { flags: 'a' });

/** The sandbox's "phones" context: every number there is a phone the harness plays. */
export const PHONES_TEMPLATE = 'Local/{exten}@phones/n';

export async function startTestKonami(
  env: SandboxEnv,
  settings: Record<string, string> = {},
  options: StartOptions = {},
): Promise<Konami> {
  const config = loadConfig({
    ARI_URL: env.url,
    ARI_USERNAME: env.username,
    ARI_PASSWORD: env.password,
    HTTP_PORT: '0',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'konami-test-')),
    DIAL_TEMPLATE: PHONES_TEMPLATE,
    // The harness's phones are Local channels, no devices: callers are called back on their number.
    RECALL_CALLERS: 'number',
    // The sandbox's classes (sandbox/etc/musiconhold.conf).
    MOH_CLASSES: 'default,jazz',
    LOG_LEVEL: 'debug',
    // A test's konami leaves Asterisk as it found it.
    SHUTDOWN_CALLS: 'hangup',
    ...settings,
  });
  return startKonami(config, createLogger(config.logLevel, logStream), options);
}
