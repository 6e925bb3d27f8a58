// Users of an account: the people who may transfer their own calls from an
// app, without the account's API key. A user has a username, a name, the
// extension numbers that are theirs, and a password. The password is kept as
// Kazoo's clients send it, md5("username:password"), keyed once more with the
// deployment's credentials key (HMAC-SHA256): the store alone reveals nothing
// useful, and Kazoo's user_auth works unchanged. Changing the password (or
// the username) gives the user a new key id, so every token they had stops.
// Kazoo's sha method (sha1 of the same) is kept the same way.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import Joi from 'joi';
import { NUMBER, NUMBER_RULE } from '../stasis/dial.js';
import { ValidationError, fieldErrors } from '../validation.js';

export interface User {
  id: string;
  username: string;
  first_name?: string;
  last_name?: string;
  /** The extension numbers that are this user's: a call with one of them as a party is the user's call. */
  numbers: string[];
  /** HMAC-SHA256, under the credentials key, of md5("username:password") in hex (Kazoo's method md5). */
  credentials: string;
  /** The same of sha1("username:password") (Kazoo's method sha). */
  credentials_sha: string;
  /** The id the user's tokens carry: new with every password. */
  kid: string;
  created: string;
  updated: string;
}

/** What the API and the web app show of a user: never its credentials. */
export type UserView = Omit<User, 'credentials' | 'credentials_sha' | 'kid'>;

export const MAX_USERS = 1000;
export const MAX_NUMBERS_PER_USER = 10;
export const USER_ID = /^[0-9a-f]{32}$/;
const USERNAME = /^[A-Za-z0-9._@+-]{1,64}$/;

const name = Joi.string().max(64).pattern(/^[^\p{Cc}]*$/u).messages({ 'string.pattern.base': 'must be plain text' });
const fields = {
  username: Joi.string().pattern(USERNAME)
    .messages({ 'string.pattern.base': 'must be 1 to 64 of letters, digits and . _ @ + -' }),
  first_name: name,
  last_name: name,
  numbers: Joi.array().items(Joi.string().pattern(NUMBER).messages({ 'string.pattern.base': NUMBER_RULE }))
    .max(MAX_NUMBERS_PER_USER).unique(),
  password: Joi.string().min(8).max(128),
};
const createSchema = Joi.object({ ...fields, username: fields.username.required(), password: fields.password.required() });
const changeSchema = Joi.object(fields);

export interface UserChange {
  username?: string;
  first_name?: string;
  last_name?: string;
  numbers?: string[];
  password?: string;
}

export type CredentialsMethod = 'md5' | 'sha';

/** Kazoo's credentials: md5 (or sha1) of "username:password", hex. */
export function kazooCredentials(username: string, password: string, method: CredentialsMethod = 'md5'): string {
  return createHash(method === 'md5' ? 'md5' : 'sha1').update(`${username}:${password}`, 'utf8').digest('hex');
}

export class UserKeys {
  /** The key for credentials, derived from the deployment's secret (changing it means setting passwords again). */
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    this.key = createHmac('sha256', secret).update('konami user credentials v1').digest();
  }

  /** What is kept for Kazoo's credentials hash. */
  seal(credentials: string): string {
    return createHmac('sha256', this.key).update(credentials.toLowerCase(), 'utf8').digest('hex');
  }

  /** The user whose credentials these are (every user compared, in constant time each). */
  find(users: readonly User[], credentials: string, method: CredentialsMethod = 'md5'): User | undefined {
    const presented = Buffer.from(this.seal(credentials), 'hex');
    let found: User | undefined;
    for (const u of users) {
      const kept = Buffer.from(method === 'md5' ? u.credentials : u.credentials_sha, 'hex');
      if (kept.length === presented.length && timingSafeEqual(kept, presented)) found = u;
    }
    return found;
  }
}

/**
 * The account's users with one added (`id` undefined) or changed: validated,
 * usernames and numbers unique within the account. Throws a ValidationError
 * naming each field.
 */
export function withUser(
  users: readonly User[], id: string | undefined, given: unknown, keys: UserKeys, now = new Date(),
): { users: User[]; user: User } {
  const { value, error } = (id === undefined ? createSchema : changeSchema).validate(given, { abortEarly: false, convert: false });
  if (error) throw new ValidationError(fieldErrors(error));
  const change = value as UserChange;
  const old = id === undefined ? undefined : users.find((u) => u.id === id);
  if (id !== undefined && !old) throw new UnknownUserError(id);
  if (id === undefined && users.length >= MAX_USERS) {
    throw new ValidationError([{ field: 'username', rule: 'maxItems', message: `an account has at most ${MAX_USERS} users` }]);
  }
  const others = users.filter((u) => u.id !== id);
  const problems = [];
  const username = change.username ?? old!.username;
  if (others.some((u) => u.username.toLowerCase() === username.toLowerCase())) {
    problems.push({ field: 'username', rule: 'unique', message: 'is another user\'s username in this account' });
  }
  const numbers = change.numbers ?? old?.numbers ?? [];
  for (const n of numbers) {
    const owner = others.find((u) => u.numbers.includes(n));
    if (owner) problems.push({ field: 'numbers', rule: 'unique', message: `${n} is already ${owner.username}'s` });
  }
  if (old && change.username !== undefined && change.username !== old.username && change.password === undefined) {
    problems.push({ field: 'password', rule: 'required', message: 'is needed with a new username (the credentials are made of both)' });
  }
  if (problems.length > 0) throw new ValidationError(problems);
  const stamp = now.toISOString();
  const user: User = {
    id: old?.id ?? randomUUID().replace(/-/g, ''),
    username,
    numbers,
    credentials: change.password !== undefined ? keys.seal(kazooCredentials(username, change.password)) : old!.credentials,
    credentials_sha: change.password !== undefined ? keys.seal(kazooCredentials(username, change.password, 'sha')) : old!.credentials_sha,
    kid: change.password !== undefined ? randomBytes(6).toString('hex') : old!.kid,
    created: old?.created ?? stamp,
    updated: stamp,
  };
  for (const k of ['first_name', 'last_name'] as const) {
    const v = change[k] ?? old?.[k];
    if (v !== undefined && v !== '') user[k] = v;
  }
  return { users: old ? users.map((u) => (u.id === id ? user : u)) : [...users, user], user };
}

/** The user with a new key id: every token it had stops working. */
export function withNewKid(user: User): User {
  return { ...user, kid: randomBytes(6).toString('hex'), updated: new Date().toISOString() };
}

export function viewOf(user: User): UserView {
  const view: Partial<User> = { ...user };
  delete view.credentials;
  delete view.credentials_sha;
  delete view.kid;
  return view as UserView;
}

/** Each account version's numbers and their users, so a lookup is one map read. */
const owners = new WeakMap<readonly User[], ReadonlyMap<string, string>>();

/** The id of the user a number is (Kazoo's owner_id), if any. */
export function ownerOf(users: readonly User[] | undefined, number: string): string | undefined {
  if (!users || users.length === 0) return undefined;
  let map = owners.get(users);
  if (!map) {
    // A file edited by hand may lack numbers: such a user owns none.
    map = new Map(users.flatMap((u) => (u.numbers ?? []).map((n) => [n, u.id] as [string, string])));
    owners.set(users, map);
  }
  return map.get(number);
}

export class UnknownUserError extends Error {
  constructor(readonly userId: string) {
    super(`no user ${JSON.stringify(userId)}`);
    this.name = 'UnknownUserError';
  }
}
