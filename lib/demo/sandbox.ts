// The sandbox Asterisk (sandbox/asterisk.sh) as konami's first run and its
// demo see it: its ARI credentials, the softphones it offers, and what its
// CLI reports that ARI does not (the announcer playing a bridge's music).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SandboxEnv {
  url: string;
  username: string;
  password: string;
}

export interface Softphone {
  number: string;
  name: string;
  password: string;
}

/** The script, found from this module whether it runs from lib/ or from its build under dist/. */
function script(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'sandbox', 'asterisk.sh');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('sandbox/asterisk.sh not found above this module');
}

/** Runs a sandbox command (KONAMI_SANDBOX_INSTANCE and the other settings come from `env`); its output. */
export function sandbox(args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync('bash', [script(), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env });
}

/** KEY=VALUE lines, as the script prints them. */
function pairs(text: string): Array<[string, string]> {
  return text.trim().split('\n').filter((l) => l.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}

export function sandboxEnv(run: (args: readonly string[]) => string = sandbox): SandboxEnv {
  const vars = Object.fromEntries(pairs(run(['env'])));
  return { url: vars['ARI_URL']!, username: vars['ARI_USERNAME']!, password: vars['ARI_PASSWORD']! };
}

/** Where softphones on this machine register (host:port, UDP), and the sandbox's softphones. */
export function sandboxPhones(run: (args: readonly string[]) => string = sandbox): { address: string; phones: Softphone[] } {
  let address = '';
  const phones: Softphone[] = [];
  for (const [key, value] of pairs(run(['phones']))) {
    if (key === 'SIP_ADDRESS') address = value;
    const [number, name, password] = value.split(' ');
    if (key === 'PHONE' && number && name && password) phones.push({ number, name, password });
  }
  return { address, phones };
}

export interface CliChannel {
  name: string;
  state: string;
  application: string;
  bridgeId: string;
}

/**
 * Every channel as Asterisk's CLI lists it. The CLI also shows the channels
 * ARI hides, such as the announcer that plays a bridge's music on hold.
 */
export function cliChannels(run: (args: readonly string[]) => string = sandbox): CliChannel[] {
  return run(['cli', 'core show channels concise'])
    .split('\n')
    .filter((l) => l.includes('!'))
    .map((l) => {
      const f = l.split('!');
      return { name: f[0]!, state: f[4]!, application: f[5]!, bridgeId: f[12] ?? '' };
    });
}

/** The bridges music on hold plays into (Asterisk puts an ARI_MOH announcer channel in each). */
export function bridgesWithMusic(channels: readonly CliChannel[]): Set<string> {
  return new Set(channels.filter((c) => c.name.startsWith('Announcer/ARI_MOH') && c.bridgeId).map((c) => c.bridgeId));
}
