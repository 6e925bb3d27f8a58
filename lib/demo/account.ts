// The demo account of the sandbox: made once, the first time `npm start` runs
// against the sandbox Asterisk, with the specification's two codes (transfer
// *21 and resume *22). Its API key is kept beside the store in
// DATA_DIR/demo-account (mode 0600) so that every later start can print it
// again and `npm run demo` can use it: the store itself keeps only its hash.
// That folder already holds the token secret, which is worth more than the key.
// The demo account alone may use the dial route "sandbox", which reaches the
// sandbox's softphones and the demo's phones; every other account keeps the
// default route.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateMetaflows } from '../metaflow/config.js';
import type { ModuleRegistry } from '../metaflow/modules.js';
import { DEFAULT_ROUTE } from '../stasis/dial.js';
import type { AccountStore } from '../store/accounts.js';
import { writeAtomically } from '../store/files.js';

export const DEMO_ACCOUNT_NAME = 'Demo';

/** The sandbox's dialplan context for the softphones and the demo's phones (sandbox/etc/extensions.conf). */
export const DEMO_ROUTE = { name: 'sandbox', template: 'Local/{target}@sandbox-dial/n' };

/** Alice presses *21 and a number to transfer Bob there, through the sandbox route; *22 cancels. */
export const DEMO_METAFLOWS = {
  numbers: { 22: { module: 'resume' } },
  patterns: { '21(\\d+)': { module: 'transfer', data: { dial_route: DEMO_ROUTE.name } } },
};

export interface DemoAccount {
  account: string;
  apiKey: string;
  /** Made (or given a new key) by this call: false when an earlier start's was found and still works. */
  made: boolean;
}

export const demoAccountFile = (dataDir: string): string => join(dataDir, 'demo-account');

/** What DATA_DIR/demo-account says, or undefined when there is none or it is not one. */
export async function readDemoAccount(dataDir: string): Promise<{ account: string; apiKey: string } | undefined> {
  const text = await readFile(demoAccountFile(dataDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const kept = JSON.parse(text) as { account?: unknown; api_key?: unknown };
    return typeof kept.account === 'string' && typeof kept.api_key === 'string' ? { account: kept.account, apiKey: kept.api_key } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The demo account: the one kept in DATA_DIR/demo-account while its key still
 * opens it; the same account with a new key when someone rotated it; a new one
 * when it was removed (or never made). Codes an administrator changed since
 * are left as they are.
 */
export async function ensureDemoAccount(
  store: AccountStore, dataDir: string, modules: Pick<ModuleRegistry<unknown>, 'get' | 'names'>,
  /** The routes of konami's environment (DIAL_TEMPLATE, DIAL_ROUTES), which win over the store's. */
  environment: Readonly<Record<string, string>> = {},
): Promise<DemoAccount> {
  const route = environment[DEMO_ROUTE.name] ?? store.dialRoutes()[DEMO_ROUTE.name];
  if (route !== undefined && route !== DEMO_ROUTE.template) {
    // An operator's own route of that name is never overwritten.
    throw new Error(`a dial route named "${DEMO_ROUTE.name}" exists already (${route}): the demo needs that name for ${DEMO_ROUTE.template}`);
  }
  if (store.dialRoutes()[DEMO_ROUTE.name] === undefined) await store.setDialRoute(DEMO_ROUTE.name, DEMO_ROUTE.template);
  const kept = await readDemoAccount(dataDir);
  if (kept) {
    const found = await store.findByApiKey(kept.apiKey);
    if (found?.account.id === kept.account) return { ...kept, made: false };
    if (await store.get(kept.account)) {
      const { apiKey } = await store.rotateApiKey(kept.account);
      await keep(dataDir, kept.account, apiKey);
      return { account: kept.account, apiKey, made: true };
    }
  }
  const routes = [DEFAULT_ROUTE, DEMO_ROUTE.name];
  const metaflows = validateMetaflows(DEMO_METAFLOWS, modules, { dialRoutes: routes });
  const { account, apiKey } = await store.create(DEMO_ACCOUNT_NAME);
  await store.setDialRoutes(account.id, routes);
  await store.setMetaflows(account.id, metaflows);
  await keep(dataDir, account.id, apiKey);
  return { account: account.id, apiKey, made: true };
}

async function keep(dataDir: string, account: string, apiKey: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeAtomically(demoAccountFile(dataDir), `${JSON.stringify({ account, api_key: apiKey })}\n`);
}
