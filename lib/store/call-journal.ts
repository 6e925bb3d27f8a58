// The state of the calls in progress, kept so a konami started again (after a
// crash or SIGKILL) can take its calls back. One JSON document per call; the
// latest version wins. The file journal serves one instance; the interface is
// what a shared store would implement.
import { closeSync, ftruncateSync, openSync, promises as fs, writeSync } from 'node:fs';
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

/**
 * Each call's newest readable version in a journal's text (a call that ended
 * has none). A line a konami killed mid-write left unfinished (no newline)
 * or unreadable gives way to the call's version before it.
 */
export function parseJournal(text: string): Map<string, string> {
  const versions = new Map<string, string>();
  const lines = text.split('\n');
  lines.pop(); // what follows the last newline was never finished
  for (const line of lines) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const id = line.slice(0, space);
    const json = line.slice(space + 1);
    if (json === '-') versions.delete(id);
    else if (readable(json)) versions.set(id, json);
  }
  return versions;
}

function readable(json: string): boolean {
  try {
    JSON.parse(json);
    return true;
  } catch {
    return false;
  }
}

/** The journal is rewritten with only the live calls once it is this large and mostly dead versions. */
/** After a failed write, how soon it is tried again (doubling while it keeps failing, up to RETRY_MAX_MS). */
const RETRY_AFTER_FAILURE_MS = 500;
const RETRY_MAX_MS = 30_000;
const COMPACT_BYTES = 1 << 20;

/**
 * One append-only file, DATA_DIR/calls/journal: a line per version,
 * `<call id> <JSON>`, or `<call id> -` when the call ended; the last line of a
 * call wins. Versions given in one turn of the event loop (and while a write
 * is under way) go to the disk in one write, whatever the number of calls; a
 * version awaited (a channel is about to be made) is written at once, in the
 * same turn. A call's step costs no file of its own and no rename. The file is rewritten
 * whole (by rename) when it grows large with dead versions, emptied when no
 * call is left, and after a write that failed (so a line written in part is
 * never followed by more). No fsync: the file must outlive konami's process,
 * not the machine (a machine that dies takes Asterisk's calls too).
 *
 * Files of the former layout (one `<call id>.json` per call) are read at
 * start and folded into the journal, so calls survive an upgrade.
 */
export class FileCallJournal implements CallJournal {
  /** Each live call's newest version, as given (what a rewrite writes). */
  private readonly live = new Map<string, string>();
  /** Versions not yet handed to the disk (null: the call ended). */
  private pending = new Map<string, string | null>();
  /** Those waiting for the pending versions to be on disk. */
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private writing: Promise<void> | undefined;
  private scheduled = false;
  /** The journal, open for appending (written to synchronously: a small append to a local file costs less than a trip to the thread pool). */
  private fd: number | undefined;
  private size = 0;
  private liveBytes = 0;
  /** The file must be rewritten whole before anything is appended (after loading, or a failed write). */
  private rewrite = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  private constructor(private readonly dir: string, private readonly log: Logger) {}

  private get file(): string {
    return join(this.dir, 'journal');
  }

  static async open(dataDir: string, log: Logger): Promise<FileCallJournal> {
    const dir = join(dataDir, 'calls');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    return new FileCallJournal(dir, log);
  }

  save(id: string, json: string): void {
    this.enqueue(id, json, false).catch((err: Error) => this.log.error({ err: err.message }, 'call state not kept'));
  }

  saveNow(id: string, json: string): Promise<void> {
    return this.enqueue(id, json, true);
  }

  remove(id: string): void {
    this.enqueue(id, null, false).catch(() => undefined);
  }

  /** Every kept call (the journal, then files of the former layout not in it). */
  async loadAll(): Promise<Array<{ id: string; state: unknown }>> {
    await removeLeftovers(this.dir);
    const versions = parseJournal(await fs.readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    }));
    for (const name of await fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!versions.has(id) && ID.test(id)) versions.set(id, await fs.readFile(join(this.dir, name), 'utf8').catch(() => ''));
    }
    const out: Array<{ id: string; state: unknown }> = [];
    for (const [id, json] of versions) {
      try {
        out.push({ id, state: JSON.parse(json) as unknown });
        this.keepLive(id, json);
      } catch (err) {
        this.log.error({ call_id: id, err: (err as Error).message }, 'unreadable call state skipped');
      }
    }
    // What was read is written back as one clean journal; the former files go.
    this.rewrite = true;
    await this.drain();
    if (this.rewrite) throw new Error(`could not write ${this.file}`);
    for (const name of await fs.readdir(this.dir)) if (name.endsWith('.json')) await fs.rm(join(this.dir, name), { force: true });
    return out;
  }

  /** Resolves when every version given so far was written, or its write failed (and was logged). */
  async flush(): Promise<void> {
    await this.drain();
  }

  /** Writes what is pending and lets go of the file (konami stops). */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
    clearTimeout(this.retry);
    this.closeFile();
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // closed already
    }
    this.fd = undefined;
  }

  private enqueue(id: string, json: string | null, wait: boolean): Promise<void> {
    if (!ID.test(id)) return Promise.reject(new Error(`call id not fit for a file name: ${JSON.stringify(id)}`));
    if (this.closed) return Promise.reject(new Error('the journal is closed (konami is stopping)'));
    this.pending.set(id, json);
    const done = wait ? new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject })) : Promise.resolve();
    // Awaited (a channel is about to be made): written now, unless a write is under way.
    if (wait && !this.writing) void this.drain();
    else if (!this.scheduled) {
      // At the end of this turn: every version given meanwhile, by any call, goes in the same write.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.drain();
      });
    }
    return done;
  }

  /** One writer at a time; each round writes everything pending so far in one go. Never rejects. */
  private drain(): Promise<void> {
    if (this.writing) return this.writing;
    // Closed (konami stopped): nothing more reaches the file.
    if (this.closed) return Promise.resolve();
    if (this.pending.size === 0 && !this.rewrite) return Promise.resolve();
    // Not settled in this turn (a round is awaited at least once), so `writing` is cleared after it is set.
    this.writing = (async () => {
      let failed = false;
      try {
        while ((this.pending.size > 0 || this.rewrite) && !failed) failed = !(await this.writeRound());
      } finally {
        this.writing = undefined;
      }
      // Tried again shortly, then less often while it keeps failing: what failed (every live call is
      // written whole) and versions given meanwhile (and whoever awaits them) must not wait for some
      // call to give another version.
      if (failed && !this.closed) {
        const delay = Math.min(RETRY_MAX_MS, RETRY_AFTER_FAILURE_MS * 2 ** Math.min(this.failures++, 10));
        clearTimeout(this.retry);
        this.retry = setTimeout(() => void this.drain(), delay);
        this.retry.unref();
      } else if (!failed) this.failures = 0;
    })();
    return this.writing;
  }

  /** Writes one batch; false when it failed (the next version given tries again, rewriting the file whole). */
  private async writeRound(): Promise<boolean> {
    const batch = this.pending;
    const waiters = this.waiters;
    this.pending = new Map();
    this.waiters = [];
    let text = '';
    for (const [id, json] of batch) {
      if (json === null) {
        if (!this.live.has(id)) continue;
        this.keepLive(id, undefined);
        text += `${id} -\n`;
      } else {
        this.keepLive(id, json);
        text += `${id} ${json}\n`;
      }
    }
    try {
      if (this.rewrite || (this.size > COMPACT_BYTES && this.size > 4 * this.liveBytes)) await this.writeWhole();
      else if (this.live.size === 0 && this.size > 0) this.empty();
      else if (text !== '') this.append(text);
      for (const w of waiters) w.resolve();
      return true;
    } catch (err) {
      // Part of a line may have reached the file: nothing is appended after it until it is rewritten whole
      // (every live version is in `live`).
      this.rewrite = true;
      this.log.error({ err: (err as Error).message, calls: batch.size }, 'could not keep the call state');
      for (const w of waiters) w.reject(err as Error);
      return false;
    }
  }

  private keepLive(id: string, json: string | undefined): void {
    const old = this.live.get(id);
    if (old !== undefined) this.liveBytes -= id.length + old.length + 2;
    if (json === undefined) this.live.delete(id);
    else {
      this.live.set(id, json);
      this.liveBytes += id.length + json.length + 2;
    }
  }

  private append(text: string): void {
    this.fd ??= openSync(this.file, 'a', 0o600);
    const bytes = Buffer.from(text, 'utf8');
    const written = writeSync(this.fd, bytes);
    this.size += written;
    if (written !== bytes.length) throw new Error(`${this.file}: ${written} of ${bytes.length} bytes written`);
  }

  /** No call left: the journal is emptied in place. */
  private empty(): void {
    this.fd ??= openSync(this.file, 'a', 0o600);
    ftruncateSync(this.fd, 0);
    this.size = 0;
  }

  /** The live calls only, written beside the journal and renamed over it (no call left: an empty file). */
  private async writeWhole(): Promise<void> {
    this.closeFile();
    let text = '';
    for (const [id, json] of this.live) text += `${id} ${json}\n`;
    await writeAtomically(this.file, text, { durable: false });
    this.size = Buffer.byteLength(text);
    this.rewrite = false;
  }
}
