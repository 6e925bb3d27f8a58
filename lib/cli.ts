// The `konami` command line: the operator's administration of accounts, their
// keys, their dial routes and their metaflows on the store under DATA_DIR. It
// works while konami runs (writes are atomic and locked; a running konami
// picks changes up within a second).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { validateMetaflows } from './metaflow/config.js';
import { builtInModules } from './stasis/modules/index.js';
import { ConfigError, MIN_SECRET_BYTES, loadDatabaseUrl, loadDialRoutes, loadMohClasses, parseAriUrls } from './config.js';
import { DEFAULT_ROUTE, DialRoutes, ROUTE_NAME, ROUTE_NAME_RULE, templateProblem } from './stasis/dial.js';
import { UnknownAccountError, type Account, type AccountStore } from './store/accounts.js';
import { parseJournal } from './store/call-journal.js';
import { MIGRATIONS, importSecret, migrate, openPool, sharedSecret } from './store/database.js';
import { PgCallJournal } from './store/pg-journal.js';
import { PgAccountStore } from './store/pg-store.js';
import { silentLogger } from './log.js';
import { authSecret } from './store/data-dir.js';
import { FileAccountStore } from './store/file-store.js';
import { UserKeys, withUser, type User } from './store/users.js';
import { ValidationError } from './validation.js';

export const USAGE = `usage: konami <command>

  account create <name>            create an account; prints its id and an API key (shown once)
  account list                     list accounts
  account rotate-key <account-id>  a new API key (shown once); the old key and every token it gave stop working
  account delete <account-id>      remove the account: its keys and tokens stop working at once; its calls
                                   in progress go on, without feature codes
  account routes <account-id> [<route> ...]
                                   show, or set, the dial routes the account may use (default: "default" only)
  account routes <account-id> --reset
                                   back to the default route only
  route list                       the dial routes: "default" (DIAL_TEMPLATE), DIAL_ROUTES, and those set here
  route set <name> <template>      define a dial route, e.g. pstn 'PJSIP/{target}@trunk'
  route remove <name>              remove a dial route defined here
  metaflows show <account-id>      print the account's metaflows as JSON
  metaflows set <account-id> <file.json | ->
                                   replace the account's metaflows (validated first)
  metaflows clear <account-id>     remove the account's metaflows (no feature codes)
  user add <account-id> <username> [--numbers 1001,1002] [--first-name F] [--last-name L]
                                   add a user who may transfer their own calls; prints a password (shown once)
  user list <account-id>           the account's users, their ids and numbers
  user numbers <account-id> <username> <number,...>
                                   the extension numbers that are the user's (their calls)
  user password <account-id> <username>
                                   a new password (shown once); the user's tokens stop working
  user delete <account-id> <username>
                                   remove the user: their tokens stop working
  migrate                          bring the database's schema up to date (DATABASE_URL; konami does it at start too)
  import [<data-dir>]              move a file store (DATA_DIR by default) into the database: accounts with their
                                   keys and users, dial routes, the token secret, and the calls kept for ARI_URL

The store is the PostgreSQL database DATABASE_URL names, else the folder
DATA_DIR names (default: ./data). DIAL_TEMPLATE and
DIAL_ROUTES are read as konami reads them; users' passwords are sealed with
AUTH_SECRET (or the secret kept in the store), as konami checks them.`;

export interface Io {
  env: Readonly<Record<string, string | undefined>>;
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<string>;
}

class UsageError extends Error {}

export async function runCli(args: readonly string[], io: Io): Promise<number> {
  const [group, command, ...rest] = args;
  if (!group || group === 'help' || group === '--help' || group === '-h') {
    io.out(`${USAGE}\n`);
    return group ? 0 : 1;
  }
  const dataDir = io.env['DATA_DIR']?.trim() || 'data';
  let opened: OpenedStore | undefined;
  try {
    const envRoutes = loadDialRoutes(io.env);
    const databaseUrl = loadDatabaseUrl(io.env);
    if (group === 'migrate' || group === 'import') {
      if (!databaseUrl) throw new UsageError(`"${group}" works on a database: set DATABASE_URL`);
      return await (group === 'migrate' ? migrateCommand(databaseUrl, io) : importCommand(databaseUrl, command ?? dataDir, io));
    }
    opened = await openStore(io, dataDir, databaseUrl);
    const routes = DialRoutes.over(opened.store, envRoutes);
    return await dispatch({ ...opened, routes, envRoutes }, `${group} ${command ?? ''}`.trim(), rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`konami: ${err.message}\n\n${USAGE}\n`);
    } else if (err instanceof ValidationError) {
      io.err(`konami: not saved:\n${err.errors.map((e) => `  - ${e.field}: ${e.message}`).join('\n')}\n`);
    } else if (err instanceof UnknownAccountError) {
      io.err(`konami: ${err.message} in ${opened?.where ?? dataDir}\n`);
    } else if (err instanceof ConfigError) {
      io.err(`konami: ${err.message}\n`);
    } else if (err instanceof SyntaxError) {
      io.err(`konami: the metaflows file is not valid JSON: ${err.message}\n`);
    } else {
      const e = err as NodeJS.ErrnoException;
      io.err(`konami: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    }
    return 1;
  } finally {
    await opened?.close();
  }
}

export interface OpenedStore {
  store: AccountStore;
  /** The store, as the operator knows it (never the database's URL, which may hold a password). */
  where: string;
  /** The keys of users' credentials (read only when a command needs them). */
  userKeys: () => Promise<UserKeys>;
  /** Which secret seals a password: konami must run with the same, or the password will not work. */
  sealedWith: string;
  close(): Promise<void>;
}

const quietLog = silentLogger();

export async function openStore(io: Io, dataDir: string, databaseUrl: string | undefined): Promise<OpenedStore> {
  const authSecretEnv = io.env['AUTH_SECRET'] || undefined;
  const sealedWith = authSecretEnv ? 'It is sealed with this AUTH_SECRET: konami must run with the same.' : undefined;
  if (!databaseUrl) {
    const store = await FileAccountStore.open(dataDir);
    return {
      store,
      where: dataDir,
      userKeys: async () => new UserKeys(await authSecret({ dataDir, api: { authSecret: authSecretEnv } })),
      sealedWith: sealedWith ?? 'It is sealed with DATA_DIR/auth-secret: a konami run with AUTH_SECRET set will not take it.',
      close: () => store.close(),
    };
  }
  const pool = openPool(databaseUrl, quietLog, { max: 2 });
  try {
    await migrate(pool, quietLog);
    const store = await PgAccountStore.open(pool);
    return {
      store,
      where: 'the database',
      userKeys: async () => new UserKeys(authSecretEnv ? Buffer.from(authSecretEnv, 'utf8') : await sharedSecret(pool, MIN_SECRET_BYTES)),
      sealedWith: sealedWith ?? "It is sealed with the deployment's secret kept in the database: a konami run with AUTH_SECRET set will not take it.",
      close: async () => {
        await store.close();
        await pool.end();
      },
    };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

async function migrateCommand(databaseUrl: string, io: Io): Promise<number> {
  const pool = openPool(databaseUrl, quietLog, { max: 1 });
  try {
    const applied = await migrate(pool, quietLog);
    io.out(applied.length === 0 ? `the schema is up to date (version ${MIGRATIONS.at(-1)!.version})\n` : `applied: ${applied.map((v) => `version ${v}`).join(', ')}\n`);
    return 0;
  } finally {
    await pool.end();
  }
}

/** Moves a file store into the database; what the database has already is kept and said. */
async function importCommand(databaseUrl: string, dataDir: string, io: Io): Promise<number> {
  const files = await FileAccountStore.open(dataDir);
  const pool = openPool(databaseUrl, quietLog, { max: 2 });
  try {
    await migrate(pool, quietLog);
    // The token secret first: users' passwords are sealed with it, so accounts moved under another one would
    // lose them. A database with a secret of its own is refused before anything is moved.
    const kept = await readFile(join(dataDir, 'auth-secret'), 'utf8').catch(() => undefined);
    if (kept !== undefined) {
      const secret = Buffer.from(kept.trim(), 'base64');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(kept.trim()) || secret.length < MIN_SECRET_BYTES) {
        throw new ConfigError([`${join(dataDir, 'auth-secret')}: not a secret of at least ${MIN_SECRET_BYTES} bytes; nothing moved`]);
      }
      if (!(await importSecret(pool, secret))) {
        throw new ConfigError(["the database keeps a token secret of its own: users' passwords moved under it would not work; nothing moved "
          + '(run konami with AUTH_SECRET set to the file store\'s secret, or import into a new database)']);
      }
      io.out('token secret: moved (users\' passwords and tokens go on working)\n');
    }
    const db = await PgAccountStore.open(pool);
    let added = 0;
    for (const account of await files.list()) {
      if (await db.importAccount(account)) added++;
      else io.out(`account ${account.id} (${account.name}) is in the database already: kept as it is there\n`);
    }
    io.out(`accounts: ${added} moved\n`);
    let routes = 0;
    for (const [name, template] of Object.entries(files.dialRoutes())) {
      const there = db.dialRoutes()[name];
      if (there !== undefined && there !== template) io.out(`dial route ${name} differs in the database: kept as it is there\n`);
      else if (there === undefined) {
        await db.setDialRoute(name, template);
        routes++;
      }
    }
    io.out(`dial routes: ${routes} moved\n`);
    const journal = await readFile(join(dataDir, 'calls', 'journal'), 'utf8').catch(() => '');
    const calls = parseJournal(journal);
    if (calls.size > 0) {
      // The calls are the first ARI_URL server's, named as konami names it.
      const server = parseAriUrls(io.env['ARI_URL']?.trim() || 'http://127.0.0.1:8088')[0]!;
      const moved = await new PgCallJournal(pool, server.name, quietLog).importAll(calls);
      io.out(`calls in progress: ${moved} moved, as calls of the Asterisk ${server.name} (ARI_URL)\n`);
    }
    await db.close();
    return 0;
  } finally {
    await files.close();
    await pool.end();
  }
}

function arg(rest: readonly string[], i: number, what: string): string {
  const v = rest[i];
  if (v === undefined || v === '') throw new UsageError(`missing ${what}`);
  return v;
}

interface Context extends OpenedStore {
  routes: DialRoutes;
  envRoutes: Readonly<Record<string, string>>;
}

async function existing(store: AccountStore, id: string): Promise<Account> {
  const account = await store.get(id);
  if (!account) throw new UnknownAccountError(id);
  return account;
}

/** Options given as --name value after the positional arguments. */
function options(rest: readonly string[], from: number, known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = from; i < rest.length; i += 2) {
    const name = rest[i]!;
    if (!name.startsWith('--') || !known.includes(name.slice(2))) throw new UsageError(`unknown option "${name}"`);
    out[name.slice(2)] = arg(rest, i + 1, `the value of ${name}`);
  }
  return out;
}

const numbersOf = (list: string) => list.split(',').map((n) => n.trim()).filter((n) => n !== '');


/** A password for a user: 96 random bits, shown once. */
const newPassword = () => randomBytes(12).toString('base64url');

async function userNamed(store: AccountStore, accountId: string, username: string): Promise<User> {
  const user = (await existing(store, accountId)).users?.find((u) => u.username.toLowerCase() === username.toLowerCase());
  if (!user) throw new UsageError(`no user "${username}" in account ${accountId}`);
  return user;
}

async function changeUser(ctx: Context, accountId: string, id: string | undefined, change: Record<string, unknown>): Promise<User> {
  const keys = await ctx.userKeys();
  return ctx.store.updateUsers(accountId, (users) => {
    const next = withUser(users, id, change, keys);
    return { users: next.users, result: next.user };
  });
}

async function dispatch(ctx: Context, command: string, rest: readonly string[], io: Io): Promise<number> {
  const { store, routes, envRoutes } = ctx;
  switch (command) {
    case 'account create': {
      const name = rest.join(' ').trim();
      if (!name) throw new UsageError('missing <name>');
      if (name.length > 128) throw new UsageError('the name is longer than 128 characters');
      const { account, apiKey } = await store.create(name);
      io.out(`account id: ${account.id}\napi key:    ${apiKey}\n\nThe API key is shown this once; only its hash is stored.\n`);
      return 0;
    }
    case 'account list': {
      const accounts = await store.list();
      if (accounts.length === 0) io.out('no accounts\n');
      for (const a of accounts) {
        const codes = a.metaflows ? Object.keys(a.metaflows.numbers).length + Object.keys(a.metaflows.patterns).length : 0;
        io.out(`${a.id}  ${a.name}  (created ${a.created}, ${codes} feature code${codes === 1 ? '' : 's'})\n`);
      }
      return 0;
    }
    case 'account rotate-key': {
      const id = arg(rest, 0, '<account-id>');
      const { apiKey } = await store.rotateApiKey(id);
      io.out(`api key:    ${apiKey}\n\nThe API key is shown this once; only its hash is stored. The previous key, and every token\nit gave, no longer work (a running konami sees it within a second).\n`);
      return 0;
    }
    case 'account delete': {
      const id = arg(rest, 0, '<account-id>');
      await store.remove(id);
      io.out(`account ${id} removed: its keys and tokens no longer work; its calls in progress go on without feature codes\n`);
      return 0;
    }
    case 'account routes': {
      const id = arg(rest, 0, '<account-id>');
      await existing(store, id);
      const names = rest.slice(1).flatMap((r) => r.split(',')).map((r) => r.trim()).filter((r) => r !== '');
      if (names.length === 1 && names[0] === '--reset') {
        await store.setDialRoutes(id, null);
      } else if (names.length > 0) {
        const bad = names.filter((n) => !ROUTE_NAME.test(n));
        if (bad.length > 0) throw new UsageError(`route names ${ROUTE_NAME_RULE}: ${bad.join(', ')}`);
        await store.setDialRoutes(id, [...new Set(names)]);
        if (!names.includes(DEFAULT_ROUTE)) {
          io.err(`konami: warning: without "${DEFAULT_ROUTE}", transfer codes that name no dial_route are refused when used\n`);
        }
        const unknown = names.filter((n) => routes.template(n) === undefined);
        if (unknown.length > 0) io.err(`konami: warning: not defined here (neither \`konami route set\` nor this DIAL_ROUTES): ${unknown.join(', ')}\n`);
      }
      io.out(`dial routes of ${id}: ${routes.namesFor(id).join(', ') || '(none defined)'}\n`);
      return 0;
    }
    case 'route list': {
      const table = { ...store.dialRoutes(), ...envRoutes };
      for (const [name, template] of Object.entries(table).sort(([a], [b]) => a.localeCompare(b))) {
        const from = name in envRoutes ? (name === DEFAULT_ROUTE ? 'DIAL_TEMPLATE' : 'DIAL_ROUTES') : 'konami route set';
        io.out(`${name}  ${template}  (${from})\n`);
      }
      return 0;
    }
    case 'route set': {
      const name = arg(rest, 0, '<name>');
      const template = arg(rest, 1, '<template>');
      if (!ROUTE_NAME.test(name)) throw new UsageError(`the route name ${ROUTE_NAME_RULE}`);
      if (name === DEFAULT_ROUTE) throw new UsageError(`"${DEFAULT_ROUTE}" is DIAL_TEMPLATE: set it in konami's environment`);
      const problem = templateProblem(template);
      if (problem) throw new UsageError(`the template ${problem}`);
      await store.setDialRoute(name, template);
      io.out(`dial route ${name}: ${template}${name in envRoutes ? ' (DIAL_ROUTES defines it too, and wins)' : ''}\n`);
      return 0;
    }
    case 'route remove': {
      const name = arg(rest, 0, '<name>');
      if (!(name in store.dialRoutes())) throw new UsageError(`no dial route "${name}" was set with \`konami route set\``);
      await store.setDialRoute(name, null);
      io.out(`dial route ${name} removed: transfers through it are refused from now on\n`);
      return 0;
    }
    case 'metaflows show': {
      const id = arg(rest, 0, '<account-id>');
      const account = await store.get(id);
      if (!account) throw new UnknownAccountError(id);
      io.out(`${JSON.stringify(account.metaflows, null, 2)}\n`);
      return 0;
    }
    case 'metaflows set': {
      const id = arg(rest, 0, '<account-id>');
      const file = arg(rest, 1, '<file.json | ->');
      await existing(store, id);
      const text = file === '-' ? await io.readStdin() : await readFile(file, 'utf8');
      const metaflows = validateMetaflows(JSON.parse(text), builtInModules(), { dialRoutes: routes.namesFor(id), mohClasses: loadMohClasses(io.env) });
      await store.setMetaflows(id, metaflows);
      io.out(`metaflows of ${id} replaced\n`);
      return 0;
    }
    case 'metaflows clear': {
      const id = arg(rest, 0, '<account-id>');
      await store.setMetaflows(id, null);
      io.out(`metaflows of ${id} removed: no feature codes\n`);
      return 0;
    }
    case 'user add': {
      const id = arg(rest, 0, '<account-id>');
      const username = arg(rest, 1, '<username>');
      const o = options(rest, 2, ['numbers', 'first-name', 'last-name']);
      const password = newPassword();
      const user = await changeUser(ctx, id, undefined, {
        username, password, numbers: numbersOf(o['numbers'] ?? ''),
        ...(o['first-name'] ? { first_name: o['first-name'] } : {}), ...(o['last-name'] ? { last_name: o['last-name'] } : {}),
      });
      io.out(`user id:  ${user.id}\nusername: ${user.username}\nnumbers:  ${user.numbers.join(', ') || '(none)'}\npassword: ${password}\n\nThe password is shown this once. ${ctx.sealedWith}\n`);
      return 0;
    }
    case 'user list': {
      const account = await existing(store, arg(rest, 0, '<account-id>'));
      if (!account.users?.length) io.out('no users\n');
      for (const u of account.users ?? []) {
        const name = [u.first_name, u.last_name].filter(Boolean).join(' ');
        io.out(`${u.id}  ${u.username}${name ? ` (${name})` : ''}  numbers: ${u.numbers.join(', ') || '(none)'}\n`);
      }
      return 0;
    }
    case 'user numbers': {
      const id = arg(rest, 0, '<account-id>');
      const user = await userNamed(store, id, arg(rest, 1, '<username>'));
      const changed = await changeUser(ctx, id, user.id, { numbers: numbersOf(rest.slice(2).join(',')) });
      io.out(`numbers of ${changed.username}: ${changed.numbers.join(', ') || '(none)'}\n`);
      return 0;
    }
    case 'user password': {
      const id = arg(rest, 0, '<account-id>');
      const user = await userNamed(store, id, arg(rest, 1, '<username>'));
      const password = newPassword();
      await changeUser(ctx, id, user.id, { password });
      io.out(`password: ${password}\n\nShown this once. The user's tokens no longer work. ${ctx.sealedWith}\n`);
      return 0;
    }
    case 'user delete': {
      const id = arg(rest, 0, '<account-id>');
      const user = await userNamed(store, id, arg(rest, 1, '<username>'));
      await store.updateUsers(id, (users) => ({ users: users.filter((u) => u.id !== user.id), result: undefined }));
      io.out(`user ${user.username} removed: their tokens no longer work\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The process entry (bin/konami.js, or this file run directly). */
export async function main(): Promise<void> {
  process.exitCode = await runCli(process.argv.slice(2), {
    env: process.env,
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    readStdin,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
