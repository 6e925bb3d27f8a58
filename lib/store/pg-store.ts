// Accounts in PostgreSQL (DATABASE_URL), shared by every konami instance and
// the command line. An account is one JSON document, as in the file store,
// changed under its row's lock (read, change, write in one transaction); its
// API keys' hashes are indexed beside it so a key is found without a scan.
// Every change is announced (NOTIFY) in the same transaction: each instance
// listens and refreshes that account at once, so a change made through one
// instance reaches the calls of all. A listener that lost its connection
// reconnects and reads everything again, as notifications may have been
// missed meanwhile.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../log.js';
import {
  ACCOUNT_ID, ChangingAccounts, UnknownAccountError, hashApiKey, newAccountId, newApiKey,
  type Account, type AccountStore,
} from './accounts.js';
import { inTransaction } from './database.js';

const ACCOUNTS_CHANNEL = 'konami_accounts';
const ROUTES_CHANNEL = 'konami_dial_routes';
/** After a lost listening connection, how soon it tries again (doubling up to LISTEN_RETRY_MAX_MS). */
const LISTEN_RETRY_MS = 500;
const LISTEN_RETRY_MAX_MS = 10_000;

export interface PgStoreOptions {
  /** Listen for changes made by others (a running konami); the command line does not. */
  listen?: boolean;
  /** The connection to listen on (default: DATABASE_URL's, given as `url`). */
  url?: string;
  log?: Logger;
}

interface Row {
  doc: string;
  version: string;
}

export class PgAccountStore extends ChangingAccounts implements AccountStore {
  private readonly accounts = new Map<string, { account: Account; version: string }>();
  /** Accounts found removed, with the versions counter as it was then: an answer read before counts for nothing. */
  private readonly gone = new Map<string, bigint>();
  private routes: Readonly<Record<string, string>> = Object.freeze({});
  private readonly events = new EventEmitter();
  /** Reads of one account under way: the number of the newest. */
  private readonly reads = new Map<string, number>();
  private listener: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private healthy = true;
  private closed = false;

  private constructor(private readonly pool: pg.Pool, private readonly options: PgStoreOptions) {
    super();
  }

  static async open(pool: pg.Pool, options: PgStoreOptions = {}): Promise<PgAccountStore> {
    const store = new PgAccountStore(pool, options);
    // Listening first: a change made while everything is read is announced after.
    if (options.listen) await store.listen();
    await store.readAll(true);
    return store;
  }

  async create(name: string): Promise<{ account: Account; apiKey: string }> {
    const now = new Date().toISOString();
    const { key, record } = newApiKey();
    const account: Account = { id: newAccountId(), name, created: now, updated: now, api_keys: [record], metaflows: null };
    const version = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ version: string }>('INSERT INTO accounts (id, name, doc) VALUES ($1, $2, $3) RETURNING version', [account.id, name, JSON.stringify(account)]);
      await this.writeKeys(c, account);
      await c.query('SELECT pg_notify($1, $2)', [ACCOUNTS_CHANNEL, account.id]);
      return rows[0]!.version;
    });
    this.remember(account, version);
    return { account, apiKey: key };
  }

  /** Adds an account as it is (moved from a file store, ids and keys kept); false when that id is taken already. */
  async importAccount(account: Account): Promise<boolean> {
    if (!ACCOUNT_ID.test(account.id)) throw new UnknownAccountError(account.id);
    return inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query('INSERT INTO accounts (id, name, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [account.id, account.name, JSON.stringify(account)]);
      if (!rowCount) return false;
      await this.writeKeys(c, account);
      await c.query('SELECT pg_notify($1, $2)', [ACCOUNTS_CHANNEL, account.id]);
      return true;
    });
  }

  async get(id: string): Promise<Account | undefined> {
    if (!ACCOUNT_ID.test(id)) return undefined;
    return this.refresh(id);
  }

  async list(): Promise<Account[]> {
    await this.readAll();
    return [...this.accounts.values()].map((e) => e.account).sort((a, b) => a.created.localeCompare(b.created));
  }

  named(name: string): Account[] {
    const wanted = name.toLowerCase();
    return [...this.accounts.values()].map((e) => e.account).filter((a) => a.name.toLowerCase() === wanted);
  }

  async findByApiKey(apiKey: string): Promise<{ account: Account; keyId: string } | undefined> {
    const { rows } = await this.pool.query<Row & { key_id: string }>(
      'SELECT a.doc, a.version, k.key_id FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.sha256 = $1',
      [hashApiKey(apiKey)],
    );
    const row = rows[0];
    if (!row) return undefined;
    const account = this.parse(row);
    return account ? { account, keyId: row.key_id } : undefined;
  }

  async remove(id: string): Promise<void> {
    if (!ACCOUNT_ID.test(id)) throw new UnknownAccountError(id);
    const version = await inTransaction(this.pool, async (c) => {
      // The removal takes a version too, so that no answer read before it can bring the account back.
      const { rows } = await c.query<{ version: string }>(
        "WITH removed AS (DELETE FROM accounts WHERE id = $1 RETURNING id) SELECT nextval('account_versions') AS version FROM removed", [id]);
      if (!rows[0]) throw new UnknownAccountError(id);
      await c.query('SELECT pg_notify($1, $2)', [ACCOUNTS_CHANNEL, id]);
      return rows[0].version;
    });
    this.forget(id, BigInt(version));
  }

  dialRoutes(): Readonly<Record<string, string>> {
    return this.routes;
  }

  async setDialRoute(name: string, template: string | null): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      if (template === null) await c.query('DELETE FROM dial_routes WHERE name = $1', [name]);
      else await c.query('INSERT INTO dial_routes (name, template) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET template = excluded.template', [name, template]);
      await c.query('SELECT pg_notify($1, $2)', [ROUTES_CHANNEL, name]);
    });
    await this.readRoutes();
  }

  onChange(listener: (account: Account) => void): void {
    this.events.on('change', listener);
  }

  usable(): boolean {
    return this.healthy;
  }

  cached(id: string): Account | undefined {
    return this.accounts.get(id)?.account;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  /** Changes one account under its row's lock; announces the change. */
  protected async update(id: string, change: (a: Account) => Account): Promise<Account> {
    if (!ACCOUNT_ID.test(id)) throw new UnknownAccountError(id);
    const { next, version } = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<Row>('SELECT doc, version FROM accounts WHERE id = $1 FOR UPDATE', [id]);
      const current = rows[0] && this.parse(rows[0]);
      if (!current) throw new UnknownAccountError(id);
      const changed: Account = { ...change(current), updated: new Date().toISOString() };
      const written = await c.query<{ version: string }>(
        "UPDATE accounts SET name = $2, doc = $3, version = nextval('account_versions') WHERE id = $1 RETURNING version",
        [id, changed.name, JSON.stringify(changed)],
      );
      if (JSON.stringify(changed.api_keys) !== JSON.stringify(current.api_keys)) await this.writeKeys(c, changed);
      await c.query('SELECT pg_notify($1, $2)', [ACCOUNTS_CHANNEL, id]);
      return { next: changed, version: written.rows[0]!.version };
    });
    this.remember(next, version);
    return next;
  }

  /** The account's key hashes, as its document lists them. */
  private async writeKeys(c: pg.PoolClient, account: Account): Promise<void> {
    await c.query('DELETE FROM api_keys WHERE account_id = $1', [account.id]);
    for (const k of account.api_keys) {
      await c.query('INSERT INTO api_keys (sha256, account_id, key_id) VALUES ($1, $2, $3)', [k.sha256, account.id, k.id]);
    }
  }

  /** Reads one account again (it changed, or someone asks); forgets it when it is gone. */
  private async refresh(id: string): Promise<Account | undefined> {
    // Answers may come back out of order (several connections): only the newest read of an account counts.
    const ticket = (this.reads.get(id) ?? 0) + 1;
    this.reads.set(id, ticket);
    const { rows } = await this.pool.query<Partial<Row> & { seq: string }>(
      'SELECT a.doc, a.version, (SELECT last_value FROM account_versions) AS seq FROM (SELECT 1) one LEFT JOIN accounts a ON a.id = $1', [id]);
    // What was read is the answer (fresher than what memory holds); memory takes it unless a newer read is under way.
    const newest = this.reads.get(id) === ticket;
    if (newest) this.reads.delete(id);
    const row = rows[0]!;
    if (row.doc === undefined || row.doc === null) {
      // Only an account this instance knew leaves a mark: ids that never existed (anyone may ask for them) leave none.
      if (newest && this.accounts.has(id)) this.forget(id, BigInt(row.seq));
      return undefined;
    }
    if (newest) return this.parse(row as Row);
    try {
      return JSON.parse(row.doc) as Account;
    } catch {
      return undefined;
    }
  }

  /**
   * Reads every account. With `prune` (at start, and after notifications may
   * have been missed), those no longer there are forgotten.
   */
  private async readAll(prune = false): Promise<void> {
    const { rows } = await this.pool.query<Row & { id: string; seq: string }>(
      'SELECT a.id, a.doc, a.version, s.last_value AS seq FROM account_versions s LEFT JOIN accounts a ON true');
    const seen = new Set<string>();
    for (const row of rows) {
      if (row.id === null) continue;
      seen.add(row.id);
      this.parse(row);
    }
    if (prune && rows[0]) {
      const seq = BigInt(rows[0].seq);
      // Only what was known before this read began and is missing from it was removed.
      for (const [id, e] of this.accounts) if (!seen.has(id) && BigInt(e.version) <= seq) this.forget(id, seq);
    }
    await this.readRoutes();
  }

  /** The account was removed: forgotten, and no answer read before `version` brings it back. */
  private forget(id: string, version: bigint): void {
    this.accounts.delete(id);
    if ((this.gone.get(id) ?? -1n) < version) this.gone.set(id, version);
  }

  private async readRoutes(): Promise<void> {
    const { rows } = await this.pool.query<{ name: string; template: string }>('SELECT name, template FROM dial_routes');
    this.routes = Object.freeze(Object.fromEntries(rows.map((r) => [r.name, r.template])));
  }

  /** An account row as the account (remembered); a document that cannot be read is logged, the last good one kept. */
  private parse(row: Row): Account | undefined {
    try {
      const account = JSON.parse(row.doc) as Account;
      this.remember(account, row.version);
      return this.accounts.get(account.id)?.account;
    } catch (err) {
      this.options.log?.error({ err: (err as Error).message }, 'unreadable account document ignored');
      return undefined;
    }
  }

  private remember(account: Account, version: string): void {
    const known = this.accounts.get(account.id);
    // A slower answer must not put back an older version, nor an account removed since it was read.
    if (known && BigInt(known.version) >= BigInt(version)) return;
    const removed = this.gone.get(account.id);
    if (removed !== undefined && BigInt(version) <= removed) return;
    this.accounts.set(account.id, { account, version });
    this.events.emit('change', account);
  }

  /** Opens the listening connection; on its loss, reconnects and reads everything again. */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, application_name: 'konami-listen' });
    const lost = (err?: Error) => {
      if (this.listener !== client || this.closed) return;
      this.listener = undefined;
      this.healthy = false;
      this.options.log?.warn({ err: err?.message }, 'lost the database connection that hears account changes; reconnecting');
      client.end().catch(() => undefined);
      this.relisten();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel === ACCOUNTS_CHANNEL && n.payload) {
        void this.refresh(n.payload).catch((err: Error) => this.options.log?.warn({ err: err.message }, 'could not read a changed account'));
      } else if (n.channel === ROUTES_CHANNEL) {
        void this.readRoutes().catch((err: Error) => this.options.log?.warn({ err: err.message }, 'could not read the dial routes'));
      }
    });
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${ACCOUNTS_CHANNEL}`);
      await client.query(`LISTEN ${ROUTES_CHANNEL}`);
    } catch (err) {
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
      throw err;
    }
  }

  private relisten(): void {
    if (this.closed) return;
    const delay = Math.min(LISTEN_RETRY_MAX_MS, LISTEN_RETRY_MS * 2 ** Math.min(this.failures++, 10));
    this.retry = setTimeout(() => {
      void (async () => {
        try {
          await this.listen();
          await this.readAll(true);
          this.failures = 0;
          this.healthy = true;
          this.options.log?.info('hearing account changes again');
        } catch (err) {
          this.options.log?.warn({ err: (err as Error).message, retry_ms: delay }, 'database still unreachable');
          const half = this.listener;
          this.listener = undefined;
          await half?.end().catch(() => undefined);
          this.relisten();
        }
      })();
    }, delay);
    this.retry.unref();
  }
}
