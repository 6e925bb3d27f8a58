// Accounts and what belongs to them (API key hashes, metaflows). The service
// only talks to this interface: the file store serves one instance; a
// multi-instance deployment can put a database server behind the same shape.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { MetaflowConfig } from '../metaflow/types.js';

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
}

export interface AccountStore {
  create(name: string): Promise<{ account: Account; apiKey: string }>;
  get(id: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  /** The account an API key belongs to (compared by hash, in constant time). */
  findByApiKey(apiKey: string): Promise<Account | undefined>;
  /** Replaces (or with null removes) the metaflows; the caller validated them. */
  setMetaflows(id: string, metaflows: MetaflowConfig | null): Promise<Account>;
  /** Called with the account whenever it changes, here or in another process. */
  onChange(listener: (account: Account) => void): void;
  /** The last account state this instance knows, without I/O (for the call path). */
  cached(id: string): Account | undefined;
  /** The store answered its last check (for /readyz). */
  usable(): boolean;
  close(): Promise<void>;
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
