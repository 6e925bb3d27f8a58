// `npm start` on the sandbox, once konami answers: the demo account (made the
// first time), the sandbox's softphones sent into it, and the welcome printed.
//
//   node dist/lib/demo/first-run.js <konami's pid>
//
// Run with konami's own environment (scripts/start.sh does), beside konami; it
// ends when konami does. The key and the phones' passwords are printed when
// the key was just made or stderr is a terminal; otherwise (a log file, a
// supervisor's journal) where to read them.
import { pathToFileURL } from 'node:url';
import { openStore } from '../cli.js';
import { ConfigError, loadConfig } from '../config.js';
import { builtInModules } from '../stasis/modules/index.js';
import { alive } from '../store/files.js';
import { demoAccountFile, ensureDemoAccount } from './account.js';
import { signIn, webAddress } from './konami.js';
import { sandbox, sandboxPhones } from './sandbox.js';
import { welcomeText } from './welcome.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `ok` answers true; false when the process `pid` ended first, or the deadline passed. */
async function until(ok: () => Promise<boolean>, pid: number, deadline = Infinity): Promise<boolean> {
  while (alive(pid) && Date.now() < deadline) {
    if (await ok().catch(() => false)) return true;
    await sleep(250);
  }
  return false;
}

export async function firstRun(pid: number, env: NodeJS.ProcessEnv = process.env, shown = process.stderr.isTTY === true): Promise<string | undefined> {
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    // konami itself names a bad setting, and stops.
    if (err instanceof ConfigError) return undefined;
    throw err;
  }
  if (config.databaseUrl) return 'DATABASE_URL is set: no demo account is made in that database (run without it for the demo)';
  if (config.http.port === 0) return 'HTTP_PORT is 0: konami has no fixed address to print; set a port for the demo';
  const web = webAddress(config.http.host, config.http.port);
  // konami waits for Asterisk for as long as it takes; so does this, while konami runs.
  if (!await until(async () => (await fetch(`${web}/readyz`)).ok, pid)) return undefined;
  const io = { env, out: () => undefined, err: (t: string) => void process.stderr.write(t), readStdin: async () => '' };
  const opened = await openStore(io, config.dataDir, config.databaseUrl);
  let demo;
  let metaflows;
  try {
    demo = await ensureDemoAccount(opened.store, config.dataDir, builtInModules(), config.dialRoutes);
    metaflows = (await opened.store.get(demo.account))?.metaflows;
  } finally {
    await opened.close();
  }
  // Calls from the softphones enter konami on this account (the sandbox keeps it across restarts).
  sandbox(['demo-account', demo.account], env);
  // A key just made reaches a running konami within a second: print it once it opens the API.
  const key = demo.apiKey;
  if (!await until(async () => 'token' in await signIn(web, key), pid, Date.now() + 10_000)) {
    return alive(pid) ? `konami at ${web} did not take the demo account's key within 10 s` : undefined;
  }
  const secrets = demo.made || shown;
  const sip = sandboxPhones((args) => sandbox(args, env));
  const keptIn = demoAccountFile(config.dataDir);
  process.stderr.write(welcomeText({
    web: `${web}/`, account: demo.account, apiKey: secrets ? key : undefined, keptIn, passwords: secrets, metaflows, sip,
  }));
  return undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pid = Number(process.argv[2]);
  if (!Number.isInteger(pid) || pid <= 0) {
    process.stderr.write('usage: first-run.js <konami pid>\n');
    process.exit(2);
  }
  process.once('SIGTERM', () => process.exit(0));
  firstRun(pid).then(
    (why) => {
      if (why) process.stderr.write(`npm start: no demo: ${why}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`npm start: the demo account could not be prepared: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
