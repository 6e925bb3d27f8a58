// The two places konami keeps what it knows, for tests that run the same
// scenarios on each: files under DATA_DIR, and a PostgreSQL database (on a
// server this harness starts). Each holds one account with the given
// metaflows, as the command line leaves it.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../lib/log.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { builtInModules } from '../../lib/stasis/modules/index.js';
import { migrate, openPool } from '../../lib/store/database.js';
import { PgAccountStore } from '../../lib/store/pg-store.js';
import { startPostgres } from './postgres.js';
import { dataDirWithAccount, keptCalls } from './process.js';

export interface KeptStore {
  /** What konami needs in its environment to use this store. */
  readonly env: Record<string, string>;
  readonly account: string;
  readonly apiKey: string;
  /** The ids of the calls kept now. */
  calls(): Promise<string[]>;
  /** Loses every kept call (as a store wiped by hand would). */
  forgetCalls(): Promise<void>;
  close(): Promise<void>;
}

export async function fileStoreWithAccount(name: string, metaflows: unknown): Promise<KeptStore> {
  const { dataDir, account, apiKey } = await dataDirWithAccount(name, metaflows);
  return {
    env: { DATA_DIR: dataDir },
    account,
    apiKey,
    calls: () => keptCalls(dataDir),
    forgetCalls: () => rm(join(dataDir, 'calls'), { recursive: true, force: true }),
    close: () => rm(dataDir, { recursive: true, force: true }),
  };
}

/** An account with these metaflows in the database at `url` (migrated first), as the command line makes it. */
export async function accountIn(url: string, name: string, metaflows: unknown): Promise<{ account: string; apiKey: string }> {
  const pool = openPool(url, silentLogger(), { max: 1 });
  try {
    await migrate(pool, silentLogger());
    const store = await PgAccountStore.open(pool);
    const { account, apiKey } = await store.create(name);
    await store.setMetaflows(account.id, validateMetaflows(metaflows, builtInModules()));
    await store.close();
    return { account: account.id, apiKey };
  } finally {
    await pool.end();
  }
}

export async function databaseWithAccount(name: string, metaflows: unknown): Promise<KeptStore> {
  const server = await startPostgres();
  try {
    const url = await server.database();
    const { account, apiKey } = await accountIn(url, name, metaflows);
    const pool = openPool(url, silentLogger(), { max: 1 });
    return {
      env: { DATABASE_URL: url },
      account,
      apiKey,
      calls: async () => (await pool.query<{ id: string }>('SELECT id FROM calls')).rows.map((r) => r.id),
      forgetCalls: async () => void (await pool.query('DELETE FROM calls')),
      close: async () => {
        await pool.end();
        server.destroy();
      },
    };
  } catch (err) {
    server.destroy();
    throw err;
  }
}

/** Each place konami may keep what it knows, by name, for suites run on both. */
export const STORE_KINDS: ReadonlyArray<{ name: string; open: (name: string, metaflows: unknown) => Promise<KeptStore> }> = [
  { name: 'kept in files', open: fileStoreWithAccount },
  { name: 'kept in PostgreSQL', open: databaseWithAccount },
];
