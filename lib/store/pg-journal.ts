// The calls in progress in PostgreSQL (DATABASE_URL): a row per call, keyed by
// the Asterisk server it lives on, so another instance can take that
// server's calls back. Versions are coalesced by a WriteQueue: one statement
// per turn of the event loop, whatever the number of calls.
import type pg from 'pg';
import type { Logger } from '../log.js';
import { parseVersions, type CallJournal } from './call-journal.js';
import { WriteQueue } from './write-queue.js';

export class PgCallJournal implements CallJournal {
  private readonly queue: WriteQueue;

  /** `asterisk`: the server whose calls this journal keeps (its ARI address). */
  constructor(private readonly pool: pg.Pool, private readonly asterisk: string, private readonly log: Logger) {
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

  /** One statement: the ended calls deleted, the others written (inserted or replaced). */
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
    await this.pool.query(
      `WITH ended AS (DELETE FROM calls WHERE asterisk = $1 AND id = ANY($4::text[]))
       INSERT INTO calls (asterisk, id, state)
       SELECT $1, x.id, x.state FROM unnest($2::text[], $3::text[]) AS x (id, state)
       ON CONFLICT (asterisk, id) DO UPDATE SET state = excluded.state, updated_at = now()`,
      [this.asterisk, ids, states, ended],
    );
  }
}
