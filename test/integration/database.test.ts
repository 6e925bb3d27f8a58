// Distributed mode's store on a real PostgreSQL server (a throw-away cluster
// this file starts): migrations, accounts and their keys, changes heard by
// every instance, the journal of calls in progress, a server restart, and
// the command line's migrate and import.
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from '../../lib/cli.js';
import { ConfigError } from '../../lib/config.js';
import { openStores, refusedByDatabase } from '../../lib/store/open.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { silentLogger } from '../../lib/log.js';
import { builtInModules } from '../../lib/stasis/modules/index.js';
import { hashApiKey, type Account } from '../../lib/store/accounts.js';
import { authSecret } from '../../lib/store/data-dir.js';
import { MIGRATIONS, migrate, openPool, sharedSecret } from '../../lib/store/database.js';
import { FileAccountStore } from '../../lib/store/file-store.js';
import { AsteriskLease, leaseTiming } from '../../lib/store/lease.js';
import { PgCallJournal } from '../../lib/store/pg-journal.js';
import { PgAccountStore } from '../../lib/store/pg-store.js';
import { kazooCredentials, UserKeys, withUser } from '../../lib/store/users.js';
import { eventually } from '../harness/asterisk.js';
import { startPostgres, type Postgres } from '../harness/postgres.js';

const log = silentLogger();
const flows = (raw: unknown) => validateMetaflows(raw, builtInModules());

describe('distributed mode: the store on PostgreSQL', function () {
  this.timeout(30_000);
  let server: Postgres;
  let url: string;
  const pools: pg.Pool[] = [];
  const stores: PgAccountStore[] = [];

  const pool = () => {
    const p = openPool(url, log);
    pools.push(p);
    return p;
  };
  /** An instance's store: its own pool and listening connection, on the shared database. */
  const instance = async () => {
    const p = pool();
    await migrate(p, log);
    const s = await PgAccountStore.open(p, { listen: true, url, log });
    stores.push(s);
    return s;
  };

  before(async function () {
    server = await startPostgres();
  });

  beforeEach(async function () {
    url = await server.database();
  });

  afterEach(async function () {
    for (const s of stores.splice(0)) await s.close();
    for (const p of pools.splice(0)) await p.end();
  });

  after(function () {
    server?.destroy();
  });

  it('migrates a new database once, even when several instances start at the same moment', async function () {
    const results = await Promise.all([pool(), pool(), pool()].map((p) => migrate(p, log)));
    expect(results.flat(), 'each version applied once').to.deep.equal(MIGRATIONS.map((m) => m.version));
    expect(await migrate(pool(), log), 'nothing left to apply').to.deep.equal([]);
    const { rows } = await pool().query('SELECT version FROM konami_migrations ORDER BY version');
    expect(rows.map((r: { version: number }) => r.version)).to.deep.equal(MIGRATIONS.map((m) => m.version));
  });

  it('keeps an API key only as its hash, finds its account by it, and forgets it when the key is rotated', async function () {
    const store = await instance();
    const { account, apiKey } = await store.create('Acme');
    await store.create('Other');
    const { rows } = await pool().query<{ doc: string }>('SELECT doc FROM accounts');
    const everything = JSON.stringify(rows) + JSON.stringify((await pool().query('SELECT * FROM api_keys')).rows);
    expect(everything).not.to.contain(apiKey);
    expect(everything).to.contain(hashApiKey(apiKey));
    expect(await store.findByApiKey(apiKey)).to.deep.equal({ account, keyId: account.api_keys[0]!.id });
    expect(await store.findByApiKey(`${apiKey}x`)).to.equal(undefined);
    const rotated = await store.rotateApiKey(account.id);
    expect(await store.findByApiKey(apiKey), 'the old key').to.equal(undefined);
    expect((await store.findByApiKey(rotated.apiKey))?.account.id).to.equal(account.id);
  });

  it('a change made through one instance reaches the others at once, with their listeners told', async function () {
    const [a, b] = [await instance(), await instance()];
    const { account } = await a.create('Acme');
    await eventually(async () => b.cached(account.id)?.name, (n) => n === 'Acme', 'B knows the new account', 1000);
    const seen: Array<number | undefined> = [];
    b.onChange((changed) => seen.push(changed.metaflows?.digit_timeout));
    const started = Date.now();
    await a.setMetaflows(account.id, flows({ digit_timeout: 1234, numbers: { 22: { module: 'resume' } } }));
    await eventually(async () => b.cached(account.id)?.metaflows?.digit_timeout, (t) => t === 1234, 'B sees the new metaflows', 1000);
    expect(Date.now() - started, 'ms until B knew').to.be.below(1000);
    expect(seen).to.deep.equal([1234]);
    await a.setDialRoute('pstn', 'PJSIP/{target}@trunk');
    await eventually(async () => b.dialRoutes()['pstn'], (t) => t === 'PJSIP/{target}@trunk', 'B sees the dial route', 1000);
    await a.remove(account.id);
    await eventually(async () => b.cached(account.id), (x) => x === undefined, 'B forgets the removed account', 1000);
    expect((await pool().query('SELECT count(*)::int AS n FROM api_keys')).rows[0].n, 'its keys went with it').to.equal(0);
  });

  it('an answer read before an account was removed never brings it back (a late sign-in lookup, say)', async function () {
    const a = await instance();
    const { account, apiKey } = await a.create('Acme');
    // Instance B's pool holds back the answer of its API key lookup until the account is gone.
    const p = pool();
    let release = () => undefined as void;
    const held = new Promise<void>((r) => (release = r));
    const query = p.query.bind(p) as (...args: unknown[]) => Promise<unknown>;
    (p as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
      const answer = await query(...args);
      if (String(args[0]).includes('FROM api_keys k')) await held;
      return answer;
    };
    const b = await PgAccountStore.open(p, { listen: true, url, log });
    stores.push(b);
    const lookup = b.findByApiKey(apiKey);
    await new Promise((r) => setTimeout(r, 200));
    await a.remove(account.id);
    await eventually(async () => b.cached(account.id), (x) => x === undefined, 'B forgets the removed account', 2000);
    release();
    expect(await lookup, 'the late lookup finds nothing').to.equal(undefined);
    expect(b.cached(account.id), 'nor is the account cached again').to.equal(undefined);
  });

  it('changes of one account from two instances at once are both kept (each under the row lock)', async function () {
    const [a, b] = [await instance(), await instance()];
    const { account } = await a.create('Acme');
    const keys = new UserKeys(Buffer.alloc(32, 7));
    await Promise.all(['ann', 'ben', 'cat', 'dan'].map((name, i) => (i % 2 ? a : b).updateUsers(account.id, (users) => {
      const { users: next } = withUser(users, undefined, { username: name, password: `${name}-password` }, keys);
      return { users: next, result: undefined };
    })));
    expect((await a.get(account.id))!.users!.map((u) => u.username).sort()).to.deep.equal(['ann', 'ben', 'cat', 'dan']);
  });

  it('a signed-out token stays refused by every instance', async function () {
    const [a, b] = [await instance(), await instance()];
    const { account } = await a.create('Acme');
    await a.revokeToken(account.id, 'token-1', Math.floor(Date.now() / 1000) + 600);
    await eventually(async () => b.cached(account.id)?.revoked_tokens?.map((r) => r.jti), (j) => j?.[0] === 'token-1', 'B refuses the token', 1000);
  });

  it('the database restarted: an instance hears changes again, having read what changed while it was away', async function () {
    const [a, b] = [await instance(), await instance()];
    const { account } = await a.create('Acme');
    await eventually(async () => b.cached(account.id), (x) => x !== undefined, 'B knows the account', 1000);
    server.kill();
    await eventually(async () => b.usable(), (u) => !u, 'B says its store is not usable', 5000);
    server.start();
    // Changed through A as soon as the server is back, maybe before B listens again.
    await eventually(async () => a.setMetaflows(account.id, flows({ digit_timeout: 4321 })).then(() => true, () => false), (ok) => ok, 'A writes again', 10_000);
    await eventually(async () => b.cached(account.id)?.metaflows?.digit_timeout, (t) => t === 4321, 'B has the change', 15_000);
    await eventually(async () => b.usable(), (u) => u, 'B usable again', 15_000);
  });

  it('keeps each Asterisk server\'s calls apart, writes a caller name no JSON column would take, and forgets ended calls', async function () {
    const p = pool();
    await migrate(p, log);
    const one = new PgCallJournal(p, 'asterisk-1:8088', log);
    const two = new PgCallJournal(p, 'asterisk-2:8088', log);
    const hostile = JSON.stringify({ caller: 'Eve\u0000\ud800', step: 1 });
    await one.saveNow('call-a', hostile);
    one.save('call-b', '{"step":1}');
    one.save('call-b', '{"step":2}');
    two.save('call-a', '{"other":true}');
    await Promise.all([one.flush(), two.flush()]);
    expect((await one.loadAll()).sort((x, y) => x.id.localeCompare(y.id))).to.deep.equal([
      { id: 'call-a', state: { caller: 'Eve\u0000\ud800', step: 1 } }, { id: 'call-b', state: { step: 2 } },
    ]);
    expect(await two.loadAll()).to.deep.equal([{ id: 'call-a', state: { other: true } }]);
    one.remove('call-a');
    await one.flush();
    expect((await one.loadAll()).map((c) => c.id)).to.deep.equal(['call-b']);
    await one.close();
    await two.close();
  });

  it('a version written while the database is down is written once it is back, by itself', async function () {
    const p = pool();
    await migrate(p, log);
    const journal = new PgCallJournal(p, 'asterisk-1:8088', log);
    server.kill();
    try {
      let failed = false;
      await journal.saveNow('call-a', '{"step":1}').catch(() => (failed = true));
      expect(failed, 'saveNow said the write failed').to.equal(true);
      journal.save('call-a', '{"step":2}');
    } finally {
      server.start();
    }
    await eventually(() => journal.loadAll().catch(() => []), (calls) => JSON.stringify(calls) === '[{"id":"call-a","state":{"step":2}}]', 'the newest version written', 15_000);
    await journal.close();
  });

  it('konami does not start on a database that refuses it, naming the setting without its password; an unreachable one is waited for', async function () {
    const settings = { dataDir: 'unused', api: { authSecret: undefined }, cluster: { instanceId: 'test', leaseSeconds: 3, advertisedUrl: undefined, ariGiveUpSeconds: 30 } };
    const databaseUrl = `postgres://konami:hunter2@127.0.0.1:${server.port}/no_such_database`;
    const err = await openStores({ ...settings, databaseUrl }, log).then(() => undefined, (e: Error) => e);
    expect(err, databaseUrl).to.be.instanceOf(ConfigError);
    expect(err!.message).to.contain('DATABASE_URL: cannot use the database').and.not.contain('hunter2');
    // Refused connections (a server restarting) are not the setting's fault.
    const refused = await new pg.Client({ connectionString: 'postgres://konami@127.0.0.1:1/konami' }).connect().then(() => undefined, (e: unknown) => e);
    expect(refusedByDatabase(refused), 'a refused connection is waited out').to.equal(false);
    const missing = await new pg.Client({ connectionString: databaseUrl }).connect().then(() => undefined, (e: unknown) => e);
    expect(refusedByDatabase(missing)).to.equal(true);
  });

  it('a slow journal write never costs the holder its lease (renewals do not wait for journal writes)', async function () {
    const p = pool();
    await migrate(p, log);
    const lease = new AsteriskLease(url, 'asterisk-1:8088', 'holder-a#1', leaseTiming(3), log);
    lease.start('http://127.0.0.1:1');
    await lease.acquired();
    const lost: string[] = [];
    lease.on('lost', (reason: string) => lost.push(reason));
    const journal = new PgCallJournal(p, 'asterisk-1:8088', log, () => lease.fence);
    await journal.saveNow('call-a', '{"step":1}');
    // Another transaction holds the call's row: the next write waits on it, with its term checked and locked.
    const blocker = await p.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query("SELECT 1 FROM calls WHERE id = 'call-a' FOR UPDATE");
      const slow = journal.saveNow('call-a', '{"step":2}');
      await new Promise((r) => setTimeout(r, 4000));
      expect(lost, 'the lease held through a write longer than its term').to.deep.equal([]);
      expect(lease.held).to.equal(true);
      await blocker.query('COMMIT');
      await slow;
    } finally {
      blocker.release();
    }
    expect(await journal.loadAll()).to.deep.equal([{ id: 'call-a', state: { step: 2 } }]);
    await journal.close();
    await lease.stop(true);
  });

  describe('the command line on the database', function () {
    async function konami(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
      let out = '';
      let err = '';
      const code = await runCli(args, { env, out: (t) => void (out += t), err: (t) => void (err += t), readStdin: async () => '' });
      return { code, out, err };
    }

    it('migrate says what it applied, then that the schema is up to date', async function () {
      expect((await konami(['migrate'], { DATABASE_URL: url })).out).to.contain('applied: version 1');
      expect((await konami(['migrate'], { DATABASE_URL: url })).out).to.contain('the schema is up to date');
      expect((await konami(['migrate'], {})).err, 'without DATABASE_URL').to.contain('set DATABASE_URL');
    });

    it('works on the same accounts a running instance serves, and never prints the database URL', async function () {
      const withPassword = url.replace('konami@', 'konami:s3cret-pw@');
      const created = await konami(['account', 'create', 'Acme'], { DATABASE_URL: withPassword });
      expect(created.code, created.err).to.equal(0);
      const id = /account id: ([0-9a-f]{32})/.exec(created.out)![1]!;
      const running = await instance();
      expect(running.cached(id)?.name).to.equal('Acme');
      const missing = await konami(['account', 'delete', '0'.repeat(32)], { DATABASE_URL: withPassword });
      expect(missing.err).to.contain('in the database').and.not.to.contain('s3cret-pw');
    });

    it('import moves a file store: its API key, its users\' passwords, its dial routes and its calls in progress go on working', async function () {
      const dataDir = mkdtempSync(join(tmpdir(), 'konami-import-'));
      const files = await FileAccountStore.open(dataDir);
      const { account, apiKey } = await files.create('Acme');
      await files.setMetaflows(account.id, flows({ numbers: { 22: { module: 'resume' } } }));
      const keys = new UserKeys(await authSecret({ dataDir, api: { authSecret: undefined } }));
      await files.updateUsers(account.id, (users) => ({ users: withUser(users, undefined, { username: 'ann', password: 'ann-password', numbers: ['1001'] }, keys).users, result: undefined }));
      await files.setDialRoute('pstn', 'PJSIP/{target}@trunk');
      await files.close();
      await mkdir(join(dataDir, 'calls'), { recursive: true });
      writeFileSync(join(dataDir, 'calls', 'journal'), 'call-1 {"step":3}\n');

      const moved = await konami(['import', dataDir], { DATABASE_URL: url, ARI_URL: 'http://127.0.0.1:8088' });
      expect(moved.code, moved.err).to.equal(0);
      expect(moved.out).to.contain('accounts: 1 moved').and.contain('dial routes: 1 moved').and.contain('token secret: moved').and.contain('calls in progress: 1 moved');

      const p = pool();
      const db = await PgAccountStore.open(p);
      stores.push(db);
      expect((await db.findByApiKey(apiKey))?.account.id, 'the API key').to.equal(account.id);
      expect(db.cached(account.id)?.metaflows?.numbers).to.deep.equal({ 22: { module: 'resume', data: {} } });
      expect(db.dialRoutes()).to.deep.equal({ pstn: 'PJSIP/{target}@trunk' });
      const dbKeys = new UserKeys(await sharedSecret(p, 32));
      const ann = db.cached(account.id)!.users![0]!;
      expect(dbKeys.find([ann], kazooCredentials('ann', 'ann-password', 'md5'), 'md5')?.username, "ann's password").to.equal('ann');
      expect(await new PgCallJournal(p, '127.0.0.1:8088', log).loadAll()).to.deep.equal([{ id: 'call-1', state: { step: 3 } }]);

      // Into a database that made a secret of its own: refused before anything moves.
      const otherUrl = await server.database();
      const otherPool = openPool(otherUrl, log);
      pools.push(otherPool);
      await migrate(otherPool, log);
      await sharedSecret(otherPool, 32);
      const refused = await konami(['import', dataDir], { DATABASE_URL: otherUrl });
      expect(refused.code).to.equal(1);
      expect(refused.err).to.contain('token secret of its own').and.contain('nothing moved');
      expect((await otherPool.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n, 'no account moved').to.equal(0);

      const again = await konami(['import', dataDir], { DATABASE_URL: url });
      expect(again.out, 'a second import changes nothing').to.contain('accounts: 0 moved').and.contain('in the database already');
      const accounts: Account[] = await db.list();
      expect(accounts).to.have.length(1);
    });
  });
});
