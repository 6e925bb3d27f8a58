// The state of the calls in progress, kept so a konami started again (after a
// crash or SIGKILL) can take its calls back. One JSON document per call; the
// latest version wins. The file journal serves one instance; the interface is
// what a shared store would implement.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { removeLeftovers, writeAtomically } from './files.js';

export interface CallJournal {
  /** Keeps the call's latest state (a JSON document). Writes of one call are coalesced: only the newest is written. */
  save(id: string, json: string): void;
  /** Resolves once the call's latest state is on disk (before konami makes a channel it must remember). */
  saveNow(id: string, json: string): Promise<void>;
  /** The call ended: its state is dropped. */
  remove(id: string): void;
  /** Every kept state, as written. Unreadable documents are logged and skipped. */
  loadAll(): Promise<Array<{ id: string; state: unknown }>>;
  /** Resolves when every pending write has reached the disk. */
  flush(): Promise<void>;
}

/** Remembers nothing (unit tests, and konami without restart recovery). */
export const NO_JOURNAL: CallJournal = {
  save: () => undefined,
  saveNow: async () => undefined,
  remove: () => undefined,
  loadAll: async () => [],
  flush: async () => undefined,
};

const ID = /^[A-Za-z0-9._-]{1,128}$/;

type Pending = { json: string } | { removed: true };

/**
 * One file per call under DATA_DIR/calls, replaced by rename so a reader
 * never sees half a document. No fsync: the file must outlive konami's
 * process, not the machine (a machine that dies takes Asterisk's calls too).
 */
export class FileCallJournal implements CallJournal {
  private readonly pending = new Map<string, Pending>();
  private readonly writing = new Map<string, Promise<void>>();

  private constructor(private readonly dir: string, private readonly log: Logger) {}

  static async open(dataDir: string, log: Logger): Promise<FileCallJournal> {
    const dir = join(dataDir, 'calls');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    return new FileCallJournal(dir, log);
  }

  save(id: string, json: string): void {
    void this.enqueue(id, { json }).catch((err: Error) => this.log.error({ err: err.message }, 'call state not kept'));
  }

  saveNow(id: string, json: string): Promise<void> {
    return this.enqueue(id, { json });
  }

  remove(id: string): void {
    void this.enqueue(id, { removed: true }).catch(() => undefined);
  }

  async loadAll(): Promise<Array<{ id: string; state: unknown }>> {
    const out: Array<{ id: string; state: unknown }> = [];
    await removeLeftovers(this.dir);
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      try {
        out.push({ id, state: JSON.parse(await fs.readFile(join(this.dir, name), 'utf8')) as unknown });
      } catch (err) {
        this.log.error({ file: name, err: (err as Error).message }, 'unreadable call state skipped');
      }
    }
    return out;
  }

  async flush(): Promise<void> {
    while (this.writing.size > 0) await Promise.allSettled([...this.writing.values()]);
  }

  private enqueue(id: string, p: Pending): Promise<void> {
    if (!ID.test(id)) return Promise.reject(new Error(`call id not fit for a file name: ${JSON.stringify(id)}`));
    this.pending.set(id, p);
    let run = this.writing.get(id);
    if (!run) {
      run = this.drain(id);
      this.writing.set(id, run);
    }
    return run;
  }

  /**
   * Writes the call's newest pending version until none is left. The writer
   * is forgotten in the same turn that finds nothing pending, so a version
   * enqueued later always starts a new writer.
   */
  private async drain(id: string): Promise<void> {
    const file = join(this.dir, `${id}.json`);
    let failure: Error | undefined;
    try {
      for (let p = this.pending.get(id); p; p = this.pending.get(id)) {
        this.pending.delete(id);
        failure = undefined;
        try {
          if ('removed' in p) {
            await fs.rm(file, { force: true });
          } else {
            await writeAtomically(file, p.json, { durable: false });
          }
        } catch (err) {
          failure = err as Error;
          this.log.error({ call_id: id, err: failure.message }, 'could not keep the call state');
        }
      }
    } finally {
      this.writing.delete(id);
    }
    // Whoever waits for this call's newest version learns that it is not on disk.
    if (failure) throw failure;
  }
}
