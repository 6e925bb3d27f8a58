// The calls' journal writes, coalesced: the versions given in one turn of the
// event loop (and while a write is under way) go to the store in one write,
// whatever the number of calls, a call's newest version only; a version
// awaited (a channel is about to be made) is written at once. One writer at a
// time. A failed write is tried again by itself, soon, then less often while
// it keeps failing. The journals (a file, a database) say only how a batch is
// written.
import type { Logger } from '../log.js';

/** After a failed write, how soon it is tried again (doubling while it keeps failing, up to RETRY_MAX_MS). */
const RETRY_AFTER_FAILURE_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface BatchSink {
  /** Writes each call's newest version (null: the call ended); throws when it failed. */
  write(batch: ReadonlyMap<string, string | null>): Promise<void>;
  /** Something must be written though no version is pending (a file to rewrite whole). */
  owed?(): boolean;
  /**
   * After a failed write: true when the sink kept what the batch held and the
   * queue need not give it again (the file keeps every live version).
   */
  keptAfterFailure?(): boolean;
}

export class WriteQueue {
  /** Versions not yet written (null: the call ended). */
  private pending = new Map<string, string | null>();
  /** Those waiting for the pending versions to be written. */
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private writing: Promise<void> | undefined;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(private readonly sink: BatchSink, private readonly log: Logger) {}

  /** Gives a call's version; resolves once written when `wait`, else at once. Rejects after close. */
  put(id: string, json: string | null, wait: boolean): Promise<void> {
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
  drain(): Promise<void> {
    if (this.writing) return this.writing;
    // Closed (konami stopped): nothing more reaches the store.
    if (this.closed) return Promise.resolve();
    if (this.pending.size === 0 && !this.sink.owed?.()) return Promise.resolve();
    // Not settled in this turn (a round is awaited at least once), so `writing` is cleared after it is set.
    this.writing = (async () => {
      let failed = false;
      try {
        while ((this.pending.size > 0 || this.sink.owed?.()) && !failed) failed = !(await this.round());
      } finally {
        this.writing = undefined;
      }
      // Tried again shortly, then less often while it keeps failing: what failed, and versions given
      // meanwhile (and whoever awaits them), must not wait for some call to give another version.
      if (failed && !this.closed) {
        const delay = Math.min(RETRY_MAX_MS, RETRY_AFTER_FAILURE_MS * 2 ** Math.min(this.failures++, 10));
        clearTimeout(this.retry);
        this.retry = setTimeout(() => void this.drain(), delay);
        this.retry.unref();
      } else if (!failed) this.failures = 0;
    })();
    return this.writing;
  }

  /** Writes what is pending; nothing is written after. */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
    clearTimeout(this.retry);
  }

  /** Writes one batch; false when it failed. */
  private async round(): Promise<boolean> {
    const batch = this.pending;
    const waiters = this.waiters;
    this.pending = new Map();
    this.waiters = [];
    try {
      await this.sink.write(batch);
      for (const w of waiters) w.resolve();
      return true;
    } catch (err) {
      this.log.error({ err: (err as Error).message, calls: batch.size }, 'could not keep the call state');
      // What failed is given again, unless a newer version came meanwhile.
      if (!this.sink.keptAfterFailure?.()) for (const [id, json] of batch) if (!this.pending.has(id)) this.pending.set(id, json);
      for (const w of waiters) w.reject(err as Error);
      return false;
    }
  }
}
