// Accounts as one JSON file each under DATA_DIR/accounts. Writes are atomic
// (temporary file, fsync, rename, fsync of the folder), so a crash leaves
// either the old or the new file, never half of one. Read-modify-write runs
// under a lock file, so the command line and a running konami can both write.
// Changes made by another process are picked up by polling file times.
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import {
  ACCOUNT_ID, ChangingAccounts, UnknownAccountError, hashApiKey, keyMatches, newAccountId, newApiKey,
  type Account, type AccountStore,
} from './accounts.js';
import { removeLeftovers, writeAtomically } from './files.js';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

/** Every write renames a new file into place: a new inode is a new version. */
function versionOf(s: { ino: number; mtimeMs: number; size: number }): string {
  return `${s.ino}:${s.mtimeMs}:${s.size}`;
}

export interface FileStoreOptions {
  /** How often to look for changes made by other processes (0: never). */
  pollMs?: number;
  log?: Logger;
}

export class FileAccountStore extends ChangingAccounts implements AccountStore {
  private readonly dir: string;
  /** The dial routes defined with the command line (the operator's, not an account's). */
  private readonly routesFile: string;
  private routes: { table: Readonly<Record<string, string>>; version: string } = { table: {}, version: '' };
  private readonly accounts = new Map<string, { account: Account; version: string }>();
  private readonly events = new EventEmitter();
  private poller: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private healthy = true;

  private constructor(dataDir: string, private readonly options: FileStoreOptions) {
    super();
    this.dir = join(dataDir, 'accounts');
    this.routesFile = join(dataDir, 'dial-routes.json');
  }

  static async open(dataDir: string, options: FileStoreOptions = {}): Promise<FileAccountStore> {
    const store = new FileAccountStore(dataDir, options);
    await fs.mkdir(store.dir, { recursive: true, mode: 0o700 });
    await removeLeftovers(store.dir);
    await removeLeftovers(dataDir);
    await store.scan();
    if (options.pollMs) {
      store.poller = setInterval(() => void store.scan().then(
        () => void (store.healthy = true),
        (err) => {
          store.healthy = false;
          options.log?.warn({ err }, 'account scan failed');
        },
      ), options.pollMs);
      store.poller.unref();
    }
    return store;
  }

  async create(name: string): Promise<{ account: Account; apiKey: string }> {
    const now = new Date().toISOString();
    const { key, record } = newApiKey();
    const account: Account = { id: newAccountId(), name, created: now, updated: now, api_keys: [record], metaflows: null };
    await this.write(account);
    return { account, apiKey: key };
  }

  async get(id: string): Promise<Account | undefined> {
    if (!ACCOUNT_ID.test(id)) return undefined;
    return (await this.read(id))?.account;
  }

  async list(): Promise<Account[]> {
    await this.scan();
    return [...this.accounts.values()].map((e) => e.account).sort((a, b) => a.created.localeCompare(b.created));
  }

  named(name: string): Account[] {
    const wanted = name.toLowerCase();
    return [...this.accounts.values()].map((e) => e.account).filter((a) => a.name.toLowerCase() === wanted);
  }

  async findByApiKey(apiKey: string): Promise<{ account: Account; keyId: string } | undefined> {
    const hash = hashApiKey(apiKey);
    await this.scan();
    let found: { account: Account; keyId: string } | undefined;
    // Every record is compared, so the time taken says nothing about which key is close.
    for (const { account } of this.accounts.values()) {
      for (const record of account.api_keys) if (keyMatches(record, hash)) found = { account, keyId: record.id };
    }
    return found;
  }

  async remove(id: string): Promise<void> {
    if (!ACCOUNT_ID.test(id)) throw new UnknownAccountError(id);
    await this.locked(this.file(id), async () => {
      if (!(await this.read(id))) throw new UnknownAccountError(id);
      await fs.rm(this.file(id));
      this.accounts.delete(id);
    });
  }

  dialRoutes(): Readonly<Record<string, string>> {
    return this.routes.table;
  }

  async setDialRoute(name: string, template: string | null): Promise<void> {
    await this.locked(this.routesFile, async () => {
      await this.readRoutes();
      const table: Record<string, string> = { ...this.routes.table };
      if (template === null) delete table[name];
      else table[name] = template;
      await writeAtomically(this.routesFile, `${JSON.stringify(table)}\n`);
      await this.readRoutes();
    });
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
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    await this.scanning;
  }

  private file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  protected async update(id: string, change: (a: Account) => Account): Promise<Account> {
    if (!ACCOUNT_ID.test(id)) throw new UnknownAccountError(id);
    return this.locked(this.file(id), async () => {
      const current = (await this.read(id))?.account;
      if (!current) throw new UnknownAccountError(id);
      const next = { ...change(current), updated: new Date().toISOString() };
      await this.write(next);
      return next;
    });
  }

  private async write(account: Account): Promise<void> {
    const target = this.file(account.id);
    // Compact: a file is as large as what it holds, never more than its indentation.
    const text = `${JSON.stringify(account)}\n`;
    await writeAtomically(target, text);
    this.remember(account, versionOf(await fs.stat(target)));
  }

  /** Reads one account file if it changed since last seen. */
  private async read(id: string): Promise<{ account: Account; version: string } | undefined> {
    let version: string;
    try {
      version = versionOf(await fs.stat(this.file(id)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.accounts.delete(id);
        return undefined;
      }
      throw err;
    }
    const known = this.accounts.get(id);
    if (known && known.version === version) return known;
    try {
      const account = JSON.parse(await fs.readFile(this.file(id), 'utf8')) as Account;
      if (account.id !== id) throw new Error(`holds account ${JSON.stringify(account.id)}`);
      this.remember(account, version);
      return this.accounts.get(id);
    } catch (err) {
      // A file edited by hand into nonsense: keep what was last good, say so.
      this.options.log?.error({ file: this.file(id), err: (err as Error).message }, 'unreadable account file ignored');
      return known;
    }
  }

  /** Reads the dial routes file if it changed since last read. */
  private async readRoutes(): Promise<void> {
    let version: string;
    try {
      version = versionOf(await fs.stat(this.routesFile));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.routes = { table: {}, version: '' };
      return;
    }
    if (version === this.routes.version) return;
    try {
      const table = JSON.parse(await fs.readFile(this.routesFile, 'utf8')) as unknown;
      if (!table || typeof table !== 'object' || Array.isArray(table)) throw new Error('not an object of name: template');
      this.routes = { table: Object.freeze({ ...(table as Record<string, string>) }), version };
    } catch (err) {
      this.options.log?.error({ file: this.routesFile, err: (err as Error).message }, 'unreadable dial routes file ignored');
    }
  }

  private remember(account: Account, version: string): void {
    const known = this.accounts.get(account.id);
    this.accounts.set(account.id, { account, version });
    if (!known || known.version !== version) this.events.emit('change', account);
  }

  private scan(): Promise<void> {
    this.scanning ??= (async () => {
      try {
        const names = await fs.readdir(this.dir);
        const ids = names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter((id) => ACCOUNT_ID.test(id));
        for (const id of ids) await this.read(id);
        for (const id of this.accounts.keys()) if (!ids.includes(id)) this.accounts.delete(id);
        await this.readRoutes();
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  /** Runs fn holding the lock file of `file` (shared with other processes). */
  private async locked<T>(file: string, fn: () => Promise<T>): Promise<T> {
    const lock = `${file}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fh = await fs.open(lock, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const age = await fs.stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > LOCK_STALE_MS) await fs.rm(lock, { force: true });
        else if (Date.now() > deadline) throw new Error(`${file} is locked by another writer (${lock})`, { cause: err });
        else await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }
}

