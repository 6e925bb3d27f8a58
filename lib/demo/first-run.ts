// `npm start` on the sandbox, once konami answers: the demo account (made the
// first time), the sandbox's softphones sent into it, and the welcome printed.
//
//   node dist/lib/demo/first-run.js <konami's pid>
//
// Run with konami's own environment (scripts/start.sh does). It gives up
// quietly when konami ends before answering.
import { pathToFileURL } from 'node:url';
import { openStore } from '../cli.js';
import { loadConfig } from '../config.js';
import { builtInModules } from '../stasis/modules/index.js';
import { demoAccountFile, ensureDemoAccount } from './account.js';
import { sandbox, sandboxPhones } from './sandbox.js';
import { welcomeText } from './welcome.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `ok` answers true; false when the process `pid` ended first, or the deadline passed. */
async function until(ok: () => Promise<boolean>, pid: number, deadline = Infinity): Promise<boolean> {
  while (alive(pid) && Date.now() < deadline) {
    if (await ok().catch(() => false)) return true;
    await sleep(250);
  }
  return false;
}

/** konami's address as a person on this machine opens it. */
export function webAddress(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

export async function firstRun(pid: number, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadConfig(env);
  const web = webAddress(config.http.host, config.http.port);
  if (!await until(async () => (await fetch(`${web}/readyz`)).ok, pid)) return 1;
  const io = { env, out: () => undefined, err: (t: string) => void process.stderr.write(t), readStdin: async () => '' };
  const opened = await openStore(io, config.dataDir, config.databaseUrl);
  let demo;
  let metaflows;
  try {
    demo = await ensureDemoAccount(opened.store, config.dataDir, builtInModules());
    metaflows = (await opened.store.get(demo.account))?.metaflows;
  } finally {
    await opened.close();
  }
  // Calls from the softphones enter konami on this account (the sandbox's softphones context reads it).
  sandbox(['cli', `dialplan set global KONAMI_DEMO_ACCOUNT ${demo.account}`], env);
  // A key just made reaches a running konami within a second: print it once it opens the API.
  const signIn = async () => (await fetch(`${web}/v1/api_auth`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { api_key: demo.apiKey } }),
  })).ok;
  if (!await until(signIn, pid, Date.now() + 10_000)) return alive(pid) ? 1 : 0;
  process.stderr.write(welcomeText({
    web: `${web}/`, account: demo.account, apiKey: demo.apiKey, keptIn: demoAccountFile(config.dataDir), metaflows, sip: sandboxPhones((args) => sandbox(args, env)),
  }));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pid = Number(process.argv[2]);
  if (!Number.isInteger(pid) || pid <= 0) {
    process.stderr.write('usage: first-run.js <konami pid>\n');
    process.exit(2);
  }
  firstRun(pid).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`konami: the demo account could not be prepared: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
