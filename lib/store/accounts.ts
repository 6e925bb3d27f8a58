// Accounts and what belongs to them (API key hashes, metaflows). The service
// only talks to this interface: the file store serves one instance; a
// multi-instance deployment can put a database server behind the same shape.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { MetaflowConfig } from '../metaflow/types.js';
import type { User } from './users.js';

export interface ApiKeyRecord {
  id: string;
  /** sha256 of the key, hex. The key itself is shown once and never stored. */
  sha256: string;
  created: string;
}

export interface Account {
  id: string;
  name: string;
  created: string;
  updated: string;
  api_keys: ApiKeyRecord[];
  /** Validated, defaults applied; null until an admin enables features. */
  metaflows: MetaflowConfig | null;
  /** The dial routes the operator allows this account (absent: only the default route). Never set through the API. */
  dial_routes?: string[];
  /** Tokens signed out before they expired, refused until they would have. */
  revoked_tokens?: RevokedToken[];
  /** Tokens issued before this time (seconds since the epoch) are refused: set when too many were signed out to list. */
  tokens_not_before?: number;
  /** People who may act on their own calls (absent: none). */
  users?: User[];
}

export interface RevokedToken {
  jti: string;
  /** When the token would have expired (seconds since the epoch): then it is forgotten. */
  exp: number;
}

/** Signed-out tokens listed per account; beyond this, every token issued so far is refused instead. */
export const MAX_REVOKED_TOKENS = 1000;

export interface AccountStore {
  create(name: string): Promise<{ account: Account; apiKey: string }>;
  get(id: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  /** The accounts of that name (case aside), as last known, without I/O (user_auth's account_name). */
  named(name: string): Account[];
  /** The account an API key belongs to, and the key's id (compared by hash, in constant time). */
  findByApiKey(apiKey: string): Promise<{ account: Account; keyId: string } | undefined>;
  /** A new API key for the account (shown once); every other key, and every token they gave, stops working. */
  rotateApiKey(id: string): Promise<{ account: Account; apiKey: string }>;
  /** Removes the account: its keys and tokens stop working, its calls get no feature codes. */
  remove(id: string): Promise<void>;
  /** Refuses one token from now until it would have expired (sign-out). */
  revokeToken(id: string, jti: string, exp: number): Promise<void>;
  /** Replaces (or with null removes) the metaflows; the caller validated them. */
  setMetaflows(id: string, metaflows: MetaflowConfig | null): Promise<Account>;
  /** Changes the account's users under the account's lock: `change` gets them as they are and may throw to change nothing. */
  updateUsers<T>(id: string, change: (users: readonly User[]) => { users: User[]; result: T }): Promise<T>;
  /** The operator's choice of dial routes for the account (null: only the default route). */
  setDialRoutes(id: string, routes: string[] | null): Promise<Account>;
  /** Dial routes the operator defined with the command line, by name (without I/O). */
  dialRoutes(): Readonly<Record<string, string>>;
  /** Defines (or with null removes) a dial route. */
  setDialRoute(name: string, template: string | null): Promise<void>;
  /** Called with the account whenever it changes, here or in another process. */
  onChange(listener: (account: Account) => void): void;
  /** The last account state this instance knows, without I/O (for the call path). */
  cached(id: string): Account | undefined;
  /** The store answered its last check (for /readyz). */
  usable(): boolean;
  close(): Promise<void>;
}

/**
 * What every account store does by changing one account under its lock (a
 * file lock, a row lock): a store says how to change one (`update`), and
 * gets these.
 */
export abstract class ChangingAccounts {
  /** Changes one account under its lock; throws UnknownAccountError when there is none. */
  protected abstract update(id: string, change: (a: Account) => Account): Promise<Account>;

  async rotateApiKey(id: string): Promise<{ account: Account; apiKey: string }> {
    const { key, record } = newApiKey();
    const account = await this.update(id, (a) => ({ ...a, api_keys: [record] }));
    return { account, apiKey: key };
  }

  async revokeToken(id: string, jti: string, exp: number): Promise<void> {
    await this.update(id, (a) => withRevoked(a, jti, exp, Date.now() / 1000));
  }

  async setMetaflows(id: string, metaflows: MetaflowConfig | null): Promise<Account> {
    return this.update(id, (a) => ({ ...a, metaflows }));
  }

  async updateUsers<T>(id: string, change: (users: readonly User[]) => { users: User[]; result: T }): Promise<T> {
    let result: T | undefined;
    await this.update(id, (a) => {
      const next = change(a.users ?? []);
      result = next.result;
      return { ...a, users: next.users };
    });
    return result as T;
  }

  async setDialRoutes(id: string, routes: string[] | null): Promise<Account> {
    return this.update(id, (a) => {
      const next = { ...a, dial_routes: routes ?? undefined };
      if (routes === null) delete next.dial_routes;
      return next;
    });
  }
}

export class UnknownAccountError extends Error {
  constructor(readonly accountId: string) {
    super(`no account ${JSON.stringify(accountId)}`);
    this.name = 'UnknownAccountError';
  }
}

export const ACCOUNT_ID = /^[0-9a-f]{32}$/;

export function newAccountId(): string {
  return randomUUID().replace(/-/g, '');
}

/** A new API key: 256 random bits, URL-safe, with a recognisable prefix. */
export function newApiKey(): { key: string; record: ApiKeyRecord } {
  const key = `kmi_${randomBytes(32).toString('base64url')}`;
  return {
    key,
    record: { id: randomBytes(6).toString('hex'), sha256: hashApiKey(key), created: new Date().toISOString() },
  };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function keyMatches(record: ApiKeyRecord, presentedHash: string): boolean {
  const a = Buffer.from(record.sha256, 'hex');
  const b = Buffer.from(presentedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The account's list of signed-out tokens with one more, expired ones dropped, within MAX_REVOKED_TOKENS. */
export function withRevoked(account: Account, jti: string, exp: number, nowSeconds: number): Account {
  const kept = (account.revoked_tokens ?? []).filter((r) => r.exp > nowSeconds && r.jti !== jti);
  if (kept.length < MAX_REVOKED_TOKENS) return { ...account, revoked_tokens: [...kept, { jti, exp }] };
  // Too many to list: refuse every token issued before this second, and this one by its id.
  return { ...account, revoked_tokens: [{ jti, exp }], tokens_not_before: Math.floor(nowSeconds) };
}
