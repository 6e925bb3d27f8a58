// The `konami` command line: the operator's administration of accounts, their
// keys, their dial routes and their metaflows on the store under DATA_DIR. It
// works while konami runs (writes are atomic and locked; a running konami
// picks changes up within a second).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { validateMetaflows } from './metaflow/config.js';
import { builtInModules } from './stasis/modules/index.js';
import { ConfigError, loadDialRoutes, loadMohClasses } from './config.js';
import { DEFAULT_ROUTE, DialRoutes, ROUTE_NAME, ROUTE_NAME_RULE, templateProblem } from './stasis/dial.js';
import { UnknownAccountError, type Account } from './store/accounts.js';
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

The store is the folder DATA_DIR names (default: ./data). DIAL_TEMPLATE and
DIAL_ROUTES are read as konami reads them; users' passwords are sealed with
AUTH_SECRET (or DATA_DIR/auth-secret), as konami checks them.`;

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
  let store: FileAccountStore | undefined;
  try {
    const envRoutes = loadDialRoutes(io.env);
    store = await FileAccountStore.open(dataDir);
    const routes = DialRoutes.over(store, envRoutes);
    const userKeys = async () => new UserKeys(await authSecret({ dataDir, api: { authSecret: io.env['AUTH_SECRET'] || undefined } }));
    return await dispatch({ store, routes, envRoutes, userKeys }, `${group} ${command ?? ''}`.trim(), rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`konami: ${err.message}\n\n${USAGE}\n`);
    } else if (err instanceof ValidationError) {
      io.err(`konami: not saved:\n${err.errors.map((e) => `  - ${e.field}: ${e.message}`).join('\n')}\n`);
    } else if (err instanceof UnknownAccountError) {
      io.err(`konami: ${err.message} in ${dataDir}\n`);
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
    await store?.close();
  }
}

function arg(rest: readonly string[], i: number, what: string): string {
  const v = rest[i];
  if (v === undefined || v === '') throw new UsageError(`missing ${what}`);
  return v;
}

interface Context {
  store: FileAccountStore;
  routes: DialRoutes;
  envRoutes: Readonly<Record<string, string>>;
  /** The keys of users' credentials (read only when a command needs them). */
  userKeys: () => Promise<UserKeys>;
}

async function existing(store: FileAccountStore, id: string): Promise<Account> {
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

/** Which secret sealed a password: konami must run with the same, or the password will not work. */
const sealedWith = (io: Io) => (io.env['AUTH_SECRET']
  ? 'It is sealed with this AUTH_SECRET: konami must run with the same.'
  : 'It is sealed with DATA_DIR/auth-secret: a konami run with AUTH_SECRET set will not take it.');

/** A password for a user: 96 random bits, shown once. */
const newPassword = () => randomBytes(12).toString('base64url');

async function userNamed(store: FileAccountStore, accountId: string, username: string): Promise<User> {
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
      io.out(`user id:  ${user.id}\nusername: ${user.username}\nnumbers:  ${user.numbers.join(', ') || '(none)'}\npassword: ${password}\n\nThe password is shown this once. ${sealedWith(io)}\n`);
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
      io.out(`password: ${password}\n\nShown this once. The user's tokens no longer work. ${sealedWith(io)}\n`);
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
