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
import { migrate, openPool, sharedSecret } from './database.js';
import { FileAccountStore } from './file-store.js';
import { AsteriskLease, leaseTiming, peerAddresses } from './lease.js';
import { PgCallJournal } from './pg-journal.js';
import { PgAccountStore } from './pg-store.js';

export interface Stores {
  accounts: AccountStore;
  journal: CallJournal & { close(): Promise<void> };
  /** Signs tokens and seals users' credentials: AUTH_SECRET, else the one kept in the store. */
  secret: Buffer;
  /** Distributed mode: who drives the Asterisk server (not yet started). Undefined: this instance alone. */
  lease?: AsteriskLease;
  /** Distributed mode: where the other instances driving an Asterisk answer. */
  peers?: () => Promise<string[]>;
  /** Lets go of the store (after the accounts and the journal are closed). */
  close(): Promise<void>;
}

type StoreConfig = Pick<Config, 'dataDir' | 'databaseUrl' | 'cluster'> & {
  api: Pick<Config['api'], 'authSecret'>;
  ari: Pick<Config['ari'], 'url'>;
};

/** The Asterisk server a journal's calls live on, as it is named in the database: its ARI address. */
export function asteriskKey(ariUrl: string): string {
  return new URL(ariUrl).host;
}

export async function openStores(config: StoreConfig, log: Logger): Promise<Stores> {
  if (!config.databaseUrl) {
    await prepareDataDir(config.dataDir, log);
    const secret = await authSecret(config);
    const accounts = await FileAccountStore.open(config.dataDir, { pollMs: 1000, log: log.child({ component: 'store' }) });
    const journal = await FileCallJournal.open(config.dataDir, log.child({ component: 'journal' }));
    return { accounts, journal, secret, close: async () => undefined };
  }
  const pool = openPool(config.databaseUrl, log.child({ component: 'database' }));
  try {
    await migrate(pool, log.child({ component: 'database' })).catch((err: Error) => {
      // The message names the server and the user, never the password.
      throw new ConfigError([`DATABASE_URL: cannot use the database (${err.message || (err as NodeJS.ErrnoException).code})`]);
    });
    const secret = config.api.authSecret ? Buffer.from(config.api.authSecret, 'utf8') : await sharedSecret(pool, MIN_SECRET_BYTES);
    const accounts = await PgAccountStore.open(pool, { listen: true, url: config.databaseUrl, log: log.child({ component: 'store' }) });
    const asterisk = asteriskKey(config.ari.url);
    // Unique to this process: two processes given one INSTANCE_ID by mistake (or a restart under the same
    // name while the former term runs) never pass for one holder.
    const holder = `${config.cluster.instanceId}#${randomBytes(4).toString('hex')}`;
    const lease = new AsteriskLease(
      config.databaseUrl, asterisk, holder, leaseTiming(config.cluster.leaseSeconds), log.child({ component: 'lease' }),
    );
    const journal = new PgCallJournal(pool, asterisk, log.child({ component: 'journal' }), () => lease.fence);
    return { accounts, journal, secret, lease, peers: peerAddresses(pool, holder), close: () => pool.end() };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}
