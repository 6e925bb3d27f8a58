// The state of the calls in progress, kept so a konami started again (after a
// crash or SIGKILL) can take its calls back. One JSON document per call; the
// latest version wins. The file journal serves one instance; the interface is
// what a shared store would implement.
import { closeSync, ftruncateSync, openSync, promises as fs, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { removeLeftovers, writeAtomically } from './files.js';
import { WriteQueue } from './write-queue.js';

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

/** The kept versions as calls' states; an unreadable one is logged and skipped. */
export function parseVersions(versions: ReadonlyMap<string, string>, log: Logger): Array<{ id: string; state: unknown }> {
  const out: Array<{ id: string; state: unknown }> = [];
  for (const [id, json] of versions) {
    try {
      out.push({ id, state: JSON.parse(json) as unknown });
    } catch (err) {
      log.error({ call_id: id, err: (err as Error).message }, 'unreadable call state skipped');
    }
  }
  return out;
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
const COMPACT_BYTES = 1 << 20;

/**
 * One append-only file, DATA_DIR/calls/journal: a line per version,
 * `<call id> <JSON>`, or `<call id> -` when the call ended; the last line of a
 * call wins. Versions are coalesced by a WriteQueue: one append per turn of
 * the event loop, whatever the number of calls. A call's step costs no file
 * of its own and no rename. The file is rewritten whole (by rename) when it
 * grows large with dead versions, emptied when no call is left, and after a
 * write that failed (so a line written in part is never followed by more). No
 * fsync: the file must outlive konami's process, not the machine (a machine
 * that dies takes Asterisk's calls too).
 *
 * Files of the former layout (one `<call id>.json` per call) are read at
 * start and folded into the journal, so calls survive an upgrade.
 */
export class FileCallJournal implements CallJournal {
  /** Each live call's newest version, as given (what a rewrite writes). */
  private readonly live = new Map<string, string>();
  /** The journal, open for appending (written to synchronously: a small append to a local file costs less than a trip to the thread pool). */
  private fd: number | undefined;
  private size = 0;
  private liveBytes = 0;
  /** The file must be rewritten whole before anything is appended (after loading, or a failed write). */
  private rewrite = false;
  private readonly queue: WriteQueue;

  private constructor(private readonly dir: string, private readonly log: Logger) {
    this.queue = new WriteQueue({
      write: (batch) => this.write(batch),
      owed: () => this.rewrite,
      keptAfterFailure: () => true,
    }, log);
  }


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
    const out = parseVersions(versions, this.log);
    for (const { id } of out) this.keepLive(id, versions.get(id));
    // What was read is written back as one clean journal; the former files go.
    this.rewrite = true;
    await this.queue.drain();
    if (this.rewrite) throw new Error(`could not write ${this.file}`);
    for (const name of await fs.readdir(this.dir)) if (name.endsWith('.json')) await fs.rm(join(this.dir, name), { force: true });
    return out;
  }

  /** Resolves when every version given so far was written, or its write failed (and was logged). */
  async flush(): Promise<void> {
    await this.queue.drain();
  }

  /** Writes what is pending and lets go of the file (konami stops). */
  async close(): Promise<void> {
    await this.queue.close();
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
    return this.queue.put(id, json, wait);
  }

  /** Writes one batch (throws when it failed: the next round rewrites the file whole). */
  private async write(batch: ReadonlyMap<string, string | null>): Promise<void> {
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
    } catch (err) {
      // Part of a line may have reached the file: nothing is appended after it until it is rewritten whole
      // (every live version is in `live`).
      this.rewrite = true;
      throw err;
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
