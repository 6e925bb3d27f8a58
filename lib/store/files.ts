// Files written whole or not at all, readable by konami's user only.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';

export interface WriteOptions {
  /**
   * Wait for the disk (file and folder) before answering: the file must
   * outlive the machine, not just the process. Default true.
   */
  durable?: boolean;
}

/**
 * Writes `target` through a temporary file beside it (mode 0600, a name no
 * other writer uses), renamed into place: a reader sees the old file or the
 * new one, never half of one. A failure at any step removes the temporary
 * file, so nothing half-written is left behind.
 */
export async function writeAtomically(target: string, text: string, options: WriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const tmp = `${target}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  if (!durable) return;
  const dir = await fs.open(dirname(target), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** A temporary file younger than this may belong to a writer on another machine sharing the folder. */
const LEFTOVER_AGE_MS = 60 * 60 * 1000;

/**
 * Removes the temporary files writers left in `dir` when their process died
 * mid-write: plain files of writeAtomically's naming, an hour old, whose
 * process (named in the file) is not running here.
 */
export async function removeLeftovers(dir: string, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await fs.readdir(dir)) {
    const m = /\.(\d+)-[0-9a-f]{12}\.tmp$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const file = join(dir, name);
    const stat = await fs.lstat(file).catch(() => undefined);
    if (!stat?.isFile() || now - stat.mtimeMs < LEFTOVER_AGE_MS) continue;
    await fs.rm(file, { force: true });
    removed++;
  }
  return removed;
}

/** The process `pid` runs (one of another user counts too). */
export function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates `target` with `text` unless it exists (then nothing is written and
 * false is answered): written whole beside it first, then linked into place,
 * so two processes starting at once agree on one file.
 */
export async function createExclusively(target: string, text: string): Promise<boolean> {
  const tmp = `${target}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.link(tmp, target);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
