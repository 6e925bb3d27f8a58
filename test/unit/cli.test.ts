import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../lib/cli.js';
import { authSecret } from '../../lib/store/data-dir.js';
import { FileAccountStore } from '../../lib/store/file-store.js';
import { kazooCredentials, UserKeys } from '../../lib/store/users.js';

describe('the konami command line', function () {
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'konami-cli-'));
  });

  async function konami(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCli(args, {
      env: { DATA_DIR: dir },
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      readStdin: async () => stdin,
    });
    return { code, out, err };
  }

  it('creates an account, printing its id and an API key once, and lists it', async function () {
    const created = await konami(['account', 'create', 'Acme', 'Corp']);
    expect(created.code).to.equal(0);
    const id = /account id: ([0-9a-f]{32})/.exec(created.out)![1]!;
    const key = /api key:\s+(kmi_\S+)/.exec(created.out)![1]!;
    const store = await FileAccountStore.open(dir);
    expect((await store.findByApiKey(key))?.account.name).to.equal('Acme Corp');
    await store.close();
    const listed = await konami(['account', 'list']);
    expect(listed.out).to.contain(id).and.to.contain('Acme Corp').and.not.to.contain(key);
  });

  it('adds a user with numbers and prints a password once, which user_auth accepts; a new password replaces it; delete removes', async function () {
    const id = /account id: (\S+)/.exec((await konami(['account', 'create', 'Acme'])).out)![1]!;
    const added = await konami(['user', 'add', id, 'alice', '--numbers', '1001,1002', '--first-name', 'Alice']);
    expect(added.code, added.err).to.equal(0);
    const password = /password: (\S+)/.exec(added.out)![1]!;
    const keys = new UserKeys(await authSecret({ dataDir: dir, api: { authSecret: undefined } }));
    const store = await FileAccountStore.open(dir);
    const users = (await store.get(id))!.users!;
    expect(users.map((u) => [u.username, u.first_name, u.numbers])).to.deep.equal([['alice', 'Alice', ['1001', '1002']]]);
    expect(keys.find(users, kazooCredentials('alice', password))?.username, 'the printed password is the one kept').to.equal('alice');
    expect((await konami(['user', 'list', id])).out).to.contain('alice (Alice)').and.to.contain('1001, 1002').and.not.to.contain(password);
    const renewed = /password: (\S+)/.exec((await konami(['user', 'password', id, 'alice'])).out)![1]!;
    const after = (await store.get(id))!.users!;
    expect(keys.find(after, kazooCredentials('alice', password)), 'the old password no longer works').to.equal(undefined);
    expect(keys.find(after, kazooCredentials('alice', renewed))?.username).to.equal('alice');
    expect((await konami(['user', 'numbers', id, 'alice', '2001'])).out).to.contain('numbers of alice: 2001');
    const clash = await konami(['user', 'add', id, 'bob', '--numbers', '2001']);
    expect(clash.code).to.equal(1);
    expect(clash.err).to.contain('numbers: 2001 is already alice\'s');
    expect((await konami(['user', 'delete', id, 'alice'])).code).to.equal(0);
    expect((await store.get(id))!.users).to.deep.equal([]);
    await store.close();
  });

  it('replaces metaflows from a file or stdin, and shows them', async function () {
    const id = /account id: (\S+)/.exec((await konami(['account', 'create', 'Acme'])).out)![1]!;
    expect((await konami(['metaflows', 'show', id])).out.trim()).to.equal('null');
    writeFileSync(join(dir, 'm.json'), JSON.stringify({ digit_timeout: 1500 }));
    expect((await konami(['metaflows', 'set', id, join(dir, 'm.json')])).code).to.equal(0);
    expect(JSON.parse((await konami(['metaflows', 'show', id])).out)).to.include({ digit_timeout: 1500, binding_digit: '*' });
    expect((await konami(['metaflows', 'set', id, '-'], '{"listen_on":"a"}')).code).to.equal(0);
    expect(JSON.parse((await konami(['metaflows', 'show', id])).out)).to.include({ listen_on: 'a', digit_timeout: 2000 });
    expect((await konami(['metaflows', 'clear', id])).code).to.equal(0);
    expect((await konami(['metaflows', 'show', id])).out.trim()).to.equal('null');
  });

  it('refuses bad metaflows naming every field, and keeps the old ones', async function () {
    const id = /account id: (\S+)/.exec((await konami(['account', 'create', 'Acme'])).out)![1]!;
    await konami(['metaflows', 'set', id, '-'], '{"digit_timeout":1500}');
    const r = await konami(['metaflows', 'set', id, '-'], '{"digit_timeout":5,"numbers":{"22":{"module":"teleport"}}}');
    expect(r.code).to.equal(1);
    expect(r.err).to.contain('digit_timeout: must be greater than or equal to 300');
    expect(r.err).to.contain('numbers.22.module: unknown module "teleport"');
    expect(JSON.parse((await konami(['metaflows', 'show', id])).out).digit_timeout).to.equal(1500);
    const notJson = await konami(['metaflows', 'set', id, '-'], '{oops');
    expect(notJson.err).to.match(/not valid JSON/);
  });

  it('answers an unknown account, an unknown command and a missing argument clearly', async function () {
    expect((await konami(['metaflows', 'show', '0123456789abcdef0123456789abcdef'])).err).to.match(/no account "0123/);
    const unknown = await konami(['account', 'frobnicate']);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.match(/unknown command "account frobnicate"/).and.to.contain('usage: konami');
    expect((await konami(['metaflows', 'set'])).err).to.match(/missing <account-id>/);
    expect((await konami([])).code).to.equal(1);
    expect((await konami(['help'])).code).to.equal(0);
  });
  it('rotates a key: the new one is printed once, the old one no longer finds the account', async function () {
    const created = (await konami(['account', 'create', 'Acme'])).out;
    const id = /account id: (\S+)/.exec(created)![1]!;
    const oldKey = /api key:\s+(kmi_\S+)/.exec(created)![1]!;
    const rotated = await konami(['account', 'rotate-key', id]);
    expect(rotated.code).to.equal(0);
    const newKey = /api key:\s+(kmi_\S+)/.exec(rotated.out)![1]!;
    const store = await FileAccountStore.open(dir);
    expect(await store.findByApiKey(oldKey)).to.equal(undefined);
    expect((await store.findByApiKey(newKey))?.account.id).to.equal(id);
    await store.close();
  });

  it('deletes an account', async function () {
    const id = /account id: (\S+)/.exec((await konami(['account', 'create', 'Acme'])).out)![1]!;
    expect((await konami(['account', 'delete', id])).code).to.equal(0);
    expect((await konami(['account', 'list'])).out).not.to.contain(id);
    expect((await konami(['account', 'delete', id])).err).to.match(/no account/);
  });

  it('defines dial routes and allows them per account; metaflows may then name them, and only them', async function () {
    const id = /account id: (\S+)/.exec((await konami(['account', 'create', 'Acme'])).out)![1]!;
    expect((await konami(['route', 'set', 'pstn', 'PJSIP/{target}@trunk'])).code).to.equal(0);
    expect((await konami(['route', 'set', 'bad', 'PJSIP/x'])).err).to.match(/\{target\} exactly once/);
    expect((await konami(['route', 'set', 'default', 'PJSIP/{target}'])).err).to.match(/DIAL_TEMPLATE/);
    expect((await konami(['route', 'list'])).out).to.contain('pstn  PJSIP/{target}@trunk  (konami route set)').and.to.contain('default  PJSIP/{target}  (DIAL_TEMPLATE)');
    const code = JSON.stringify({ patterns: { '21(\\d+)': { module: 'transfer', data: { dial_route: 'pstn' } } } });
    const refused = await konami(['metaflows', 'set', id, '-'], code);
    expect(refused.code).to.equal(1);
    expect(refused.err).to.match(/dial_route: must be a dial route this account may use: default/);
    expect((await konami(['account', 'routes', id, 'default', 'pstn'])).out).to.contain('default, pstn');
    expect((await konami(['metaflows', 'set', id, '-'], code)).code).to.equal(0);
    expect((await konami(['account', 'routes', id, '--reset'])).out).to.match(/: default\n$/);
    expect((await konami(['route', 'remove', 'pstn'])).code).to.equal(0);
    expect((await konami(['route', 'list'])).out).not.to.contain('pstn');
  });
});

describe('the konami executable (bin/konami.js, built sources)', function () {
  it('runs the command line: creates and lists an account in DATA_DIR', async function () {
    const { spawnSync } = await import('node:child_process');
    const dir = mkdtempSync(join(tmpdir(), 'konami-bin-'));
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/konami.js', ...args], { env: { ...process.env, DATA_DIR: dir }, encoding: 'utf8' });
    const created = run('account', 'create', 'Bin test');
    expect(created.stderr).to.equal('');
    expect(created.status).to.equal(0);
    expect(created.stdout).to.match(/account id: [0-9a-f]{32}\napi key: +kmi_/);
    expect(run('account', 'list').stdout).to.contain('Bin test');
    const bad = run('metaflows', 'show', 'nope');
    expect(bad.status).to.equal(1);
  });

});
