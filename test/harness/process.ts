// konami as its own process (as `npm start` runs it), for tests that kill it,
// restart it, or cut its connection to Asterisk.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { builtInModules } from '../../lib/stasis/modules/index.js';
import { parseJournal } from '../../lib/store/call-journal.js';
import { FileAccountStore } from '../../lib/store/file-store.js';
import { OUTPUT_DIR, PHONES_TEMPLATE } from './konami.js';
import { signIn } from '../../lib/demo/konami.js';

/**
 * A fresh DATA_DIR holding one account with these metaflows, as `konami
 * account create` and `konami metaflows set` leave it, for a konami process.
 */
export async function dataDirWithAccount(name: string, metaflows: unknown): Promise<{ dataDir: string; account: string; apiKey: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), `konami-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-`));
  const store = await FileAccountStore.open(dataDir);
  try {
    const { account, apiKey } = await store.create(name);
    await store.setMetaflows(account.id, validateMetaflows(metaflows, builtInModules()));
    return { dataDir, account: account.id, apiKey };
  } finally {
    await store.close();
  }
}

/** The ids of the calls konami's journal in `dataDir` keeps now (read only). */
export async function keptCalls(dataDir: string): Promise<string[]> {
  const text = await readFile(join(dataDir, 'calls', 'journal'), 'utf8').catch(() => '');
  return [...parseJournal(text).keys()];
}

/** Exchanges an API key for a token at a running konami. */
export async function apiToken(base: string, apiKey: string): Promise<string> {
  const answer = await signIn(base, apiKey);
  if ('status' in answer) throw new Error(`api_auth answered ${answer.status}`);
  return answer.token;
}

export interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

export class KonamiProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /**
   * Starts konami with the sandbox's phones as its dial template; resolves
   * when it answers /readyz, or (`until` standby) when it waits on standby
   * for another instance's lease.
   */
  static async start(env: Record<string, string>, name = 'konami', until: 'ready' | 'standby' = 'ready'): Promise<KonamiProcess> {
    const port = await freePort();
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const log = createWriteStream(join(OUTPUT_DIR, `${name}-process.log`), { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(port),
        DIAL_TEMPLATE: PHONES_TEMPLATE,
        RECALL_CALLERS: 'number',
        LOG_LEVEL: 'debug',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new KonamiProcess(child, port);
    let rest = '';
    child.stdout!.on('data', (d: Buffer) => {
      log.write(d);
      rest += d.toString();
      const parts = rest.split('\n');
      rest = parts.pop()!;
      for (const l of parts) {
        if (!l.startsWith('{')) continue;
        try {
          p.lines.push(JSON.parse(l) as LogLine);
        } catch {
          // a line cut by a kill
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (p.stderr += d.toString()));
    void p.exited.then(() => log.end());
    if (until === 'ready') await p.untilReady(20_000);
    else await p.untilLogged('standby: waiting for the lease', 20_000);
    return p;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async readiness(): Promise<number> {
    try {
      return (await fetch(this.url('/readyz'), { signal: AbortSignal.timeout(2000) })).status;
    } catch {
      return 0;
    }
  }

  /** Resolves once /readyz answers 200 and the instance drives its Asterisk (in distributed mode: not a standby). */
  async untilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`konami exited with ${this.child.exitCode}: ${this.stderr}`);
      // One answer says both: 200 and not a standby (two requests could see two moments).
      const ready = await fetch(this.url('/readyz'), { signal: AbortSignal.timeout(2000) })
        .then(async (res) => res.status === 200 && ((await res.json()) as { role?: string }).role !== 'standby', () => false);
      if (ready) return;
      if (Date.now() > deadline) throw new Error(`konami not ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolves with the first log line whose message starts with `msg`, once there is one. */
  async untilLogged(msg: string, timeoutMs: number): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logged(msg)[0];
      if (line) return line;
      if (this.child.exitCode !== null) throw new Error(`konami exited with ${this.child.exitCode} before logging "${msg}": ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`konami did not log "${msg}" within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Log lines whose message starts with `msg`. */
  logged(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg.startsWith(msg));
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
