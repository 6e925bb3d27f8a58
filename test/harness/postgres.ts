// A real PostgreSQL server for the tests of distributed mode: a throw-away
// cluster in a temporary folder (Debian's postgresql package, installed by
// scripts/install-postgres.sh), on a free port of 127.0.0.1, with the data
// written without fsync (a test's database need not outlive the machine, only
// the server: commits are still synchronous, so a killed server loses none).
// As root, the server runs as the package's `postgres` user (initdb refuses
// root). Each test gets a database of its own from `database()`.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './process.js';

/** The newest server binaries Debian's packages installed (PG_BIN overrides). */
function binDir(): string {
  if (process.env['PG_BIN']) return process.env['PG_BIN'];
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error('no PostgreSQL server here: run `bash scripts/install-postgres.sh` (Debian package postgresql)');
  return join(root, newest, 'bin');
}

export interface Postgres {
  /** A URL of the server's maintenance database (for CREATE DATABASE and the like). */
  readonly adminUrl: string;
  readonly port: number;
  /** A new, empty database; answers its URL. */
  database(name?: string): Promise<string>;
  /** Stops the server at once, as a crash would (clients are cut). */
  kill(): void;
  /** Starts it again on the same port and data. */
  start(): void;
  /** Stops it and removes its folder. */
  destroy(): void;
  /** The server's own log, for a failing test's message. */
  log(): string;
}

let made = 0;

export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'konami-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const run = (cmd: string, args: string[]) => execFileSync(asRoot ? 'runuser' : join(bin, cmd), asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args, {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: dir,
  });
  run('initdb', ['-D', data, '-U', 'konami', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
  const start = () => run('pg_ctl', ['-D', data, '-o', options, '-l', logFile, '-w', '-t', '30', 'start']);
  start();
  const adminUrl = `postgres://konami@127.0.0.1:${port}/postgres`;
  return {
    adminUrl,
    port,
    async database(name = `konami_test_${process.pid}_${++made}`) {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://konami@127.0.0.1:${port}/${name}`;
    },
    kill() {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    start,
    destroy() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}
