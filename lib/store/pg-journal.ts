// The calls in progress in PostgreSQL (DATABASE_URL): a row per call, keyed by
// the Asterisk server it lives on, so another instance can take that
// server's calls back. Versions are coalesced by a WriteQueue: one statement
// per turn of the event loop, whatever the number of calls.
import type pg from 'pg';
import type { Logger } from '../log.js';
import { parseVersions, type CallJournal } from './call-journal.js';
import type { Fence } from './lease.js';
import { WriteQueue } from './write-queue.js';

/** A write refused: this instance's lease term of that Asterisk is over. */
export class LeaseLostError extends Error {
  constructor(asterisk: string) {
    super(`not written: this instance no longer holds the lease of ${asterisk}`);
    this.name = 'LeaseLostError';
  }
}

export class PgCallJournal implements CallJournal {
  private readonly queue: WriteQueue;

  /**
   * `asterisk`: the server whose calls this journal keeps (its ARI address).
   * `fence`: the lease term its writes belong to; a write after that term
   * is refused (none given: unfenced, for the command line's import).
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly asterisk: string,
    private readonly log: Logger,
    private readonly fence?: () => Fence | undefined,
  ) {
    this.queue = new WriteQueue({ write: (batch) => this.write(batch) }, log);
  }

  save(id: string, json: string): void {
    this.queue.put(id, json, false).catch((err: Error) => this.log.error({ err: err.message }, 'call state not kept'));
  }

  saveNow(id: string, json: string): Promise<void> {
    return this.queue.put(id, json, true);
  }

  remove(id: string): void {
    this.queue.put(id, null, false).catch(() => undefined);
  }

  async loadAll(): Promise<Array<{ id: string; state: unknown }>> {
    const { rows } = await this.pool.query<{ id: string; state: string }>('SELECT id, state FROM calls WHERE asterisk = $1', [this.asterisk]);
    return parseVersions(new Map(rows.map((r) => [r.id, r.state])), this.log);
  }

  /** Adds calls kept elsewhere (a file journal moved in); a call already here keeps its own state. */
  async importAll(versions: ReadonlyMap<string, string>): Promise<number> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO calls (asterisk, id, state) SELECT $1, x.id, x.state FROM unnest($2::text[], $3::text[]) AS x (id, state)
       ON CONFLICT (asterisk, id) DO NOTHING`,
      [this.asterisk, [...versions.keys()], [...versions.values()]],
    );
    return rowCount ?? 0;
  }

  async flush(): Promise<void> {
    await this.queue.drain();
  }

  async close(): Promise<void> {
    await this.queue.close();
  }

  /**
   * One statement: the ended calls deleted, the others written (inserted or
   * replaced), all only while the lease term is this instance's (checked
   * under the lock of the term's row, which only a new term changes: a new
   * holder waits for the write and then sees it, a renewal never waits).
   */
  private async write(batch: ReadonlyMap<string, string | null>): Promise<void> {
    const ids: string[] = [];
    const states: string[] = [];
    const ended: string[] = [];
    for (const [id, json] of batch) {
      if (json === null) ended.push(id);
      else {
        ids.push(id);
        states.push(json);
      }
    }
    if (!this.fence) {
      await this.pool.query(
        `WITH ended AS (DELETE FROM calls WHERE asterisk = $1 AND id = ANY($4::text[]))
         INSERT INTO calls (asterisk, id, state)
         SELECT $1, x.id, x.state FROM unnest($2::text[], $3::text[]) AS x (id, state)
         ON CONFLICT (asterisk, id) DO UPDATE SET state = excluded.state, updated_at = now()`,
        [this.asterisk, ids, states, ended],
      );
      return;
    }
    const fence = this.fence();
    if (!fence) throw new LeaseLostError(this.asterisk);
    const { rows } = await this.pool.query<{ held: boolean }>(
      `WITH term AS (
         SELECT 1 FROM lease_terms t JOIN leases l USING (asterisk)
         WHERE t.asterisk = $1 AND t.holder = $5 AND t.epoch = $6 AND l.epoch = $6 AND l.expires_at > now()
         FOR SHARE OF t
       ), ended AS (
         DELETE FROM calls WHERE asterisk = $1 AND id = ANY($4::text[]) AND EXISTS (SELECT 1 FROM term)
       ), written AS (
         INSERT INTO calls (asterisk, id, state)
         SELECT $1, x.id, x.state FROM unnest($2::text[], $3::text[]) AS x (id, state) WHERE EXISTS (SELECT 1 FROM term)
         ON CONFLICT (asterisk, id) DO UPDATE SET state = excluded.state, updated_at = now()
       )
       SELECT EXISTS (SELECT 1 FROM term) AS held`,
      [this.asterisk, ids, states, ended, fence.holder, fence.epoch],
    );
    if (!rows[0]?.held) throw new LeaseLostError(this.asterisk);
  }
}
