// sipp, run inside the sandbox's root (sandbox/asterisk.sh sipp), playing a
// real SIP phone against the sandbox's PJSIP: scenarios in sandbox/sip.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dtmfPcap } from './rtp-events.js';

const script = fileURLToPath(new URL('../../sandbox/asterisk.sh', import.meta.url));

/** The sandbox's PJSIP port; the phones use the next ones (+11 Alice, +12 Bob, +13 Mary). */
export function sipPort(): number {
  return Number(execFileSync('bash', [script, 'sip-port'], { encoding: 'utf8' }).trim());
}

/** Writes the RFC 4733 events of `digits` where a scenario plays them from (sip/<name>.pcap in the run folder of that sandbox instance). */
export function writeDtmf(name: string, digits: string, instance = ''): void {
  const root = execFileSync('bash', [script, 'root'], { encoding: 'utf8' }).trim();
  writeFileSync(join(root, `konami${instance ? `-${instance}` : ''}`, 'sip', `${name}.pcap`), dtmfPcap(digits));
}

export class Sipp {
  output = '';
  readonly exited: Promise<number | null>;
  private constructor(readonly name: string, private readonly child: ChildProcess) {
    // 'close': the output is all read (on 'exit' some of it may still be on its way).
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
  }

  /**
   * Starts one sipp on 127.0.0.1:`port` (RTP on port + 20000) for one call.
   * `remote` is the sandbox's PJSIP address for a phone that calls; none for one that answers.
   */
  static start(name: string, o: {
    scenario: string; port: number; service: string; pauseMs: number; remote?: string; keys?: Record<string, string>;
    /** Credentials answering a challenge (sipp's -au and -ap). */
    auth?: { username: string; password: string };
    /** The environment of sandbox/asterisk.sh (KONAMI_SANDBOX_INSTANCE for another sandbox). */
    env?: NodeJS.ProcessEnv;
  }): Sipp {
    const args = [
      ...(o.remote ? [o.remote] : []),
      '-sf', `sip/${o.scenario}`, '-i', '127.0.0.1', '-p', String(o.port), '-mp', String(o.port + 20_000),
      '-s', o.service, '-d', String(o.pauseMs), '-m', '1', '-nostdin', '-timeout', '45s', '-timeout_error',
    ];
    for (const [k, v] of Object.entries(o.keys ?? {})) args.push('-key', k, v);
    if (o.auth) args.push('-au', o.auth.username, '-ap', o.auth.password);
    const child = spawn('bash', [script, 'sipp', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
    return new Sipp(name, child);
  }

  /** Resolves with sipp's exit code (0: its call went as the scenario says). */
  async result(): Promise<number | null> {
    return this.exited;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
