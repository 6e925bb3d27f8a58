// The `konami` command line: account and metaflow administration on the
// store under DATA_DIR. It works while konami runs (writes are atomic and
// locked; a running konami picks changes up within a second).
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { validateMetaflows } from './metaflow/config.js';
import { builtInModules } from './stasis/modules/index.js';
import { UnknownAccountError } from './store/accounts.js';
import { FileAccountStore } from './store/file-store.js';
import { ValidationError } from './validation.js';

export const USAGE = `usage: konami <command>

  account create <name>            create an account; prints its id and an API key (shown once)
  account list                     list accounts
  metaflows show <account-id>      print the account's metaflows as JSON
  metaflows set <account-id> <file.json | ->
                                   replace the account's metaflows (validated first)
  metaflows clear <account-id>     remove the account's metaflows (no feature codes)

The store is the folder DATA_DIR names (default: ./data).`;

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
    store = await FileAccountStore.open(dataDir);
    return await dispatch(store, `${group} ${command ?? ''}`.trim(), rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`konami: ${err.message}\n\n${USAGE}\n`);
    } else if (err instanceof ValidationError) {
      io.err(`konami: the metaflows were not saved:\n${err.errors.map((e) => `  - ${e.field}: ${e.message}`).join('\n')}\n`);
    } else if (err instanceof UnknownAccountError) {
      io.err(`konami: ${err.message} in ${dataDir}\n`);
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

async function dispatch(store: FileAccountStore, command: string, rest: readonly string[], io: Io): Promise<number> {
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
      const text = file === '-' ? await io.readStdin() : await readFile(file, 'utf8');
      const metaflows = validateMetaflows(JSON.parse(text), builtInModules());
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
