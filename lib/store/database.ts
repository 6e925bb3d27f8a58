// PostgreSQL (DATABASE_URL): the connection pool every part of distributed
// mode shares, and the schema's versioned migrations. Migrations run in one
// transaction under an advisory lock, so instances starting together apply
// each exactly once; a failed migration leaves the schema as it was.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log.js';

/** A statement that runs longer than this is cancelled by the server: a stuck database must not stall a call. */
export const STATEMENT_TIMEOUT_MS = 10_000;

export interface DatabaseOptions {
  /** Connections at most (default 10). */
  max?: number;
  /** Gives up a connection attempt after this long (default 5 s). */
  connectTimeoutMs?: number;
}

/**
 * A pool on DATABASE_URL. An idle connection the server drops (a restart, a
 * network cut) is logged and replaced on the next query; the URL, which may
 * hold a password, is never logged.
 */
export function openPool(url: string, log: Logger, options: DatabaseOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: 'konami',
  });
  pool.on('error', (err) => log.warn({ err: err.message }, 'database connection lost (replaced on next use)'));
  return pool;
}

/** Runs `fn` in a transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * The schema, one step per version; a step is never changed once released
 * (a new version is added instead). Documents are kept as JSON text, parsed
 * by konami, so nothing a caller or an account writes into them (a NUL in a
 * caller's name, say) can make the server refuse a write.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'accounts, keys, dial routes, settings, calls in progress',
    sql: `
      -- One sequence for every account's versions (and deletions): an instance can tell an old answer
      -- from a newer one, even about an account removed since.
      CREATE SEQUENCE account_versions;
      CREATE TABLE accounts (
        id text PRIMARY KEY,
        name text NOT NULL,
        doc text NOT NULL,
        version bigint NOT NULL DEFAULT nextval('account_versions')
      );
      CREATE INDEX accounts_by_name ON accounts (lower(name));
      CREATE TABLE api_keys (
        sha256 text PRIMARY KEY,
        account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        key_id text NOT NULL
      );
      CREATE INDEX api_keys_by_account ON api_keys (account_id);
      CREATE TABLE dial_routes (
        name text PRIMARY KEY,
        template text NOT NULL
      );
      CREATE TABLE settings (
        name text PRIMARY KEY,
        value text NOT NULL
      );
      CREATE TABLE calls (
        asterisk text NOT NULL,
        id text NOT NULL,
        state text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (asterisk, id)
      );
    `,
  },
  {
    version: 2,
    name: 'leases: which instance drives each Asterisk server',
    sql: `
      CREATE TABLE leases (
        asterisk text PRIMARY KEY,
        holder text NOT NULL,
        address text NOT NULL,
        epoch bigint NOT NULL,
        expires_at timestamptz NOT NULL
      );
      -- The current term of each lease, changed only when a term begins (a renewal never touches it): the
      -- journal's writes lock it, so a new holder waits for the last term's writes, and renewals never do.
      CREATE TABLE lease_terms (
        asterisk text PRIMARY KEY,
        holder text NOT NULL,
        epoch bigint NOT NULL
      );
    `,
  },
];

/** The advisory lock key of migrations (any constant; the same in every instance). */
const MIGRATION_LOCK = 0x6b6f6e61;

/** Brings the schema up to date; answers the versions applied now (none: it was). */
export async function migrate(pool: pg.Pool, log: Logger): Promise<number[]> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS konami_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM konami_migrations')).rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO konami_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
      log.info({ version: m.version, name: m.name }, 'database migrated');
    }
    const newest = Math.max(0, ...done);
    const known = MIGRATIONS.at(-1)!.version;
    if (newest > known) log.warn({ schema: newest, known }, 'the database schema is newer than this konami: run the newer konami');
    return applied;
  });
}

/**
 * The deployment's token-signing secret, made once and kept in the database
 * (every instance reads the same), unless AUTH_SECRET is set.
 */
export async function sharedSecret(pool: pg.Pool, bytes: number): Promise<Buffer> {
  await pool.query("INSERT INTO settings (name, value) VALUES ('auth_secret', $1) ON CONFLICT (name) DO NOTHING", [randomBytes(bytes).toString('base64')]);
  const { rows } = await pool.query<{ value: string }>("SELECT value FROM settings WHERE name = 'auth_secret'");
  const secret = Buffer.from(rows[0]!.value, 'base64');
  if (secret.length < bytes) throw new Error(`the database's auth_secret setting holds ${secret.length} bytes where ${bytes} are needed`);
  return secret;
}

/**
 * Keeps a secret moved from a file store (DATA_DIR/auth-secret) as the
 * deployment's, so its users' passwords and tokens go on working; answers
 * whether the database now holds that very secret.
 */
export async function importSecret(pool: pg.Pool, secret: Buffer): Promise<boolean> {
  await pool.query("INSERT INTO settings (name, value) VALUES ('auth_secret', $1) ON CONFLICT (name) DO NOTHING", [secret.toString('base64')]);
  const { rows } = await pool.query<{ value: string }>("SELECT value FROM settings WHERE name = 'auth_secret'");
  return Buffer.from(rows[0]!.value, 'base64').equals(secret);
}
