import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateMetaflows } from '../../../lib/metaflow/config.js';
import { hashApiKey } from '../../../lib/store/accounts.js';
import { FileAccountStore } from '../../../lib/store/file-store.js';
import { writeAtomically } from '../../../lib/store/files.js';
import { testRegistry } from '../metaflow/helpers.js';

const flows = (raw: unknown) => validateMetaflows(raw, testRegistry());

describe('the file account store', function () {
  let dir: string;
  let store: FileAccountStore;

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), 'konami-store-'));
    store = await FileAccountStore.open(dir);
  });

  afterEach(async function () {
    await store.close();
  });

  it('creates an account with no metaflows and an API key stored only as its hash', async function () {
    const { account, apiKey } = await store.create('Acme');
    expect(account.id).to.match(/^[0-9a-f]{32}$/);
    expect(account.metaflows).to.equal(null);
    expect(apiKey).to.match(/^kmi_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(join(dir, 'accounts', `${account.id}.json`), 'utf8');
    expect(text).not.to.contain(apiKey);
    expect(text).to.contain(hashApiKey(apiKey));
  });

  it('finds the account of an API key, and no account for a wrong key', async function () {
    const { account, apiKey } = await store.create('Acme');
    await store.create('Other');
    expect(await store.findByApiKey(apiKey)).to.deep.equal({ account, keyId: account.api_keys[0]!.id });
    expect(await store.findByApiKey(`${apiKey}x`)).to.equal(undefined);
  });

  it('keeps metaflows across a restart of the store', async function () {
    const { account } = await store.create('Acme');
    await store.setMetaflows(account.id, flows({ numbers: { 22: { module: 'resume' } } }));
    await store.close();
    const reopened = await FileAccountStore.open(dir);
    expect((await reopened.get(account.id))?.metaflows?.numbers).to.deep.equal({ 22: { module: 'resume', data: {} } });
    expect(reopened.cached(account.id)?.name).to.equal('Acme');
    await reopened.close();
  });

  it('leaves no temporary or lock file behind after writes', async function () {
    const { account } = await store.create('Acme');
    await Promise.all([1, 2, 3, 4, 5].map((n) => store.setMetaflows(account.id, flows({ digit_timeout: 1000 + n }))));
    expect(readdirSync(join(dir, 'accounts'))).to.deep.equal([`${account.id}.json`]);
    expect([1001, 1002, 1003, 1004, 1005]).to.include((await store.get(account.id))!.metaflows!.digit_timeout);
  });

  it('sees a change another process wrote, and tells its listeners', async function () {
    const { account } = await store.create('Acme');
    const seen: string[] = [];
    store.onChange((a) => seen.push(`${a.id}:${a.metaflows?.digit_timeout ?? 'none'}`));
    const other = await FileAccountStore.open(dir);
    await other.setMetaflows(account.id, flows({ digit_timeout: 1234 }));
    await other.close();
    expect(store.cached(account.id)?.metaflows).to.equal(null);
    await store.list();
    expect(store.cached(account.id)?.metaflows?.digit_timeout).to.equal(1234);
    expect(seen).to.deep.equal([`${account.id}:1234`]);
  });

  it('keeps the last good state when a file is edited into nonsense', async function () {
    const { account } = await store.create('Acme');
    writeFileSync(join(dir, 'accounts', `${account.id}.json`), '{ not json');
    expect((await store.get(account.id))?.name).to.equal('Acme');
  });

  it('refuses ids that are not account ids without touching the disk', async function () {
    expect(await store.get('../../etc/passwd')).to.equal(undefined);
    let thrown: unknown;
    try {
      await store.setMetaflows('nope', null);
    } catch (err) {
      thrown = err;
    }
    expect((thrown as Error).name).to.equal('UnknownAccountError');
  });

  it('a write that fails leaves nothing behind: no temporary file, the old file intact', async function () {
    const target = join(dir, 'file.json');
    writeFileSync(target, 'old');
    // A folder where the file's temporary name would be renamed: the rename fails.
    const blocked = join(dir, 'blocked');
    mkdirSync(blocked);
    let failed = false;
    await writeAtomically(blocked, 'new').catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).to.deep.equal([]);
    await writeAtomically(target, 'new');
    expect(readFileSync(target, 'utf8')).to.equal('new');
    expect(statSync(target).mode & 0o777).to.equal(0o600);
  });

  it('removes what a writer that died mid-write left behind, and never a live writer\'s file', async function () {
    await store.close();
    const accounts = join(dir, 'accounts');
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const name of ['x.json.2147483646-0123456789ab.tmp', 'y.json.2147483646-0123456789ab.tmp', `x.json.${process.pid}-0123456789ab.tmp`]) {
      writeFileSync(join(accounts, name), 'half');
      if (!name.startsWith('y')) utimesSync(join(accounts, name), hoursAgo, hoursAgo);
    }
    store = await FileAccountStore.open(dir);
    // Gone: the old one of a dead writer. Kept: a live writer's, and a recent one (a writer on another machine, maybe).
    expect(readdirSync(accounts).filter((n) => n.endsWith('.tmp')).sort()).to.deep.equal([`x.json.${process.pid}-0123456789ab.tmp`, 'y.json.2147483646-0123456789ab.tmp']);
  });
});
