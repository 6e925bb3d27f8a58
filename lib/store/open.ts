// Where konami keeps what it knows: files under DATA_DIR (one instance, the
// default), or PostgreSQL when DATABASE_URL is set (several instances). The
// rest of konami sees only the account store, the journal of calls in
// progress and the token secret.
import { randomBytes } from 'node:crypto';
import { ConfigError, MIN_SECRET_BYTES, type Config } from '../config.js';
import type { Logger } from '../log.js';
import type { AccountStore } from './accounts.js';
import { FileCallJournal, type CallJournal } from './call-journal.js';
import { authSecret, prepareDataDir } from './data-dir.js';
import type pg from 'pg';
import { migrate, openPool, sharedSecret } from './database.js';
import { FileAccountStore } from './file-store.js';
import { AsteriskLease, leaseTiming, peerAddresses } from './lease.js';
import { PgCallJournal } from './pg-journal.js';
import { PgAccountStore } from './pg-store.js';

/** What one Asterisk server's calls are kept with. */
export interface StationStore {
  journal: CallJournal & { close(): Promise<void> };
  /** Distributed mode: who drives the Asterisk server (not yet started). Undefined: this instance alone. */
  lease?: AsteriskLease;
}

export interface Stores {
  accounts: AccountStore;
  /** The journal (and lease) of each Asterisk server, by its name (ARI_URL's). */
  station(asterisk: string): StationStore;
  /** Signs tokens and seals users' credentials: AUTH_SECRET, else the one kept in the store. */
  secret: Buffer;
  /** The holder name this process uses in the lease table (distributed mode). */
  holder?: string;
  /** Distributed mode: where the other instances driving an Asterisk answer. */
  peers?: () => Promise<string[]>;
  /** Lets go of the store (after the accounts and the journal are closed). */
  close(): Promise<void>;
}

type StoreConfig = Pick<Config, 'dataDir' | 'databaseUrl' | 'cluster'> & { api: Pick<Config['api'], 'authSecret'> };


/**
 * A database that refuses konami (a wrong password, no such database, no
 * right to it) is a setting to fix; anything else (refused, unreachable,
 * restarting) may pass.
 */
export function refusedByDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(28|3D|42)/.test(code);
}

/** Migrates once the database answers: a refusal stops the start naming DATABASE_URL; an outage is waited out. */
async function untilMigrated(pool: pg.Pool, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await migrate(pool, log);
      return;
    } catch (err) {
      // The message names the server and the user, never the password.
      const why = (err as Error).message || String((err as NodeJS.ErrnoException).code);
      if (refusedByDatabase(err)) throw new ConfigError([`DATABASE_URL: cannot use the database (${why})`]);
      const retryMs = Math.min(10_000, 500 * 2 ** Math.min(attempt - 1, 5));
      log.warn({ err: why, attempt, retry_ms: retryMs }, 'database not reachable yet; waiting');
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

export async function openStores(config: StoreConfig, log: Logger): Promise<Stores> {
  if (!config.databaseUrl) {
    await prepareDataDir(config.dataDir, log);
    const secret = await authSecret(config);
    const accounts = await FileAccountStore.open(config.dataDir, { pollMs: 1000, log: log.child({ component: 'store' }) });
    const journal = await FileCallJournal.open(config.dataDir, log.child({ component: 'journal' }));
    // One Asterisk only (the configuration allows no more without a database).
    return { accounts, station: () => ({ journal }), secret, close: async () => undefined };
  }
  const pool = openPool(config.databaseUrl, log.child({ component: 'database' }));
  try {
    await untilMigrated(pool, log.child({ component: 'database' }));
    const secret = config.api.authSecret ? Buffer.from(config.api.authSecret, 'utf8') : await sharedSecret(pool, MIN_SECRET_BYTES);
    const accounts = await PgAccountStore.open(pool, { listen: true, url: config.databaseUrl, log: log.child({ component: 'store' }) });
    // Unique to this process: two processes given one INSTANCE_ID by mistake (or a restart under the same
    // name while the former term runs) never pass for one holder.
    const holder = `${config.cluster.instanceId}#${randomBytes(4).toString('hex')}`;
    const databaseUrl = config.databaseUrl;
    // The journals write on their own connections: API requests (sign-ins, lookups) never make a call's step wait.
    const journalPool = openPool(databaseUrl, log.child({ component: 'database' }), { max: 4 });
    return {
      accounts,
      secret,
      holder,
      station: (asterisk) => {
        const lease = new AsteriskLease(databaseUrl, asterisk, holder, leaseTiming(config.cluster.leaseSeconds), log.child({ component: 'lease', asterisk }));
        return { lease, journal: new PgCallJournal(journalPool, asterisk, log.child({ component: 'journal', asterisk }), () => lease.fence) };
      },
      peers: peerAddresses(pool, holder),
      close: async () => {
        await journalPool.end();
        await pool.end();
      },
    };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}
