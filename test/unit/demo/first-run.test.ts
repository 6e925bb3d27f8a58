import { expect } from 'chai';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_METAFLOWS, demoAccountFile, ensureDemoAccount } from '../../../lib/demo/account.js';
import { codesOf, welcomeText } from '../../../lib/demo/welcome.js';
import { validateMetaflows } from '../../../lib/metaflow/config.js';
import { builtInModules } from '../../../lib/stasis/modules/index.js';
import { FileAccountStore } from '../../../lib/store/file-store.js';

describe('the demo account of the first run', function () {
  let dir: string;
  let store: FileAccountStore;
  const modules = builtInModules();

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), 'konami-demo-'));
    store = await FileAccountStore.open(dir);
  });

  afterEach(async function () {
    await store.close();
  });

  it('is made once, with transfer on *21 and resume on *22, its key kept 0600 beside the store and working', async function () {
    const first = await ensureDemoAccount(store, dir, modules);
    expect(first.made).to.equal(true);
    const account = await store.get(first.account);
    expect(account?.metaflows?.patterns['21(\\d+)']).to.deep.equal({ module: 'transfer', data: { dial_route: 'sandbox' } });
    // Only the demo account reaches the softphones and the demo's phones.
    expect(account?.dial_routes).to.deep.equal(['default', 'sandbox']);
    expect(store.dialRoutes()).to.deep.equal({ sandbox: 'Local/{target}@sandbox-dial/n' });
    expect(account?.metaflows?.numbers['22']?.module).to.equal('resume');
    expect((await store.findByApiKey(first.apiKey))?.account.id).to.equal(first.account);
    expect(statSync(demoAccountFile(dir)).mode & 0o777).to.equal(0o600);
    const again = await ensureDemoAccount(store, dir, modules);
    expect(again).to.deep.equal({ ...first, made: false });
    expect(await store.list()).to.have.length(1);
  });

  it('keeps the codes an administrator changed since', async function () {
    const first = await ensureDemoAccount(store, dir, modules);
    await store.setMetaflows(first.account, validateMetaflows({ numbers: { 9: { module: 'resume' } } }, modules));
    await ensureDemoAccount(store, dir, modules);
    expect(Object.keys((await store.get(first.account))!.metaflows!.numbers)).to.deep.equal(['9']);
  });

  it('gets a new key when its key was rotated, and is made again when it was removed', async function () {
    const first = await ensureDemoAccount(store, dir, modules);
    await store.rotateApiKey(first.account);
    const rotated = await ensureDemoAccount(store, dir, modules);
    expect(rotated.account).to.equal(first.account);
    expect(rotated.apiKey).to.not.equal(first.apiKey);
    expect((await store.findByApiKey(rotated.apiKey))?.account.id).to.equal(first.account);
    expect(JSON.parse(readFileSync(demoAccountFile(dir), 'utf8'))).to.deep.equal({ account: first.account, api_key: rotated.apiKey });
    await store.remove(first.account);
    const remade = await ensureDemoAccount(store, dir, modules);
    expect(remade.account).to.not.equal(first.account);
    expect((await store.findByApiKey(remade.apiKey))?.account.id).to.equal(remade.account);
  });

  it('never overwrites an operator\'s own dial route of its name: it says so and makes nothing', async function () {
    const fromEnvironment = await ensureDemoAccount(store, dir, modules, { sandbox: 'PJSIP/{target}@trunk' }).then(() => undefined, (err: Error) => err.message);
    expect(fromEnvironment, 'DIAL_ROUTES defines it').to.contain('a dial route named "sandbox" exists already (PJSIP/{target}@trunk)');
    await store.setDialRoute('sandbox', 'PJSIP/{target}@lab');
    let refused: Error | undefined;
    await ensureDemoAccount(store, dir, modules).catch((err: Error) => (refused = err));
    expect(refused?.message).to.contain('a dial route named "sandbox" exists already (PJSIP/{target}@lab)');
    expect(store.dialRoutes()).to.deep.equal({ sandbox: 'PJSIP/{target}@lab' });
    expect(await store.list()).to.have.length(0);
  });

  it('a kept file that is not one is replaced by a new account', async function () {
    writeFileSync(demoAccountFile(dir), 'not json');
    const made = await ensureDemoAccount(store, dir, modules);
    expect(made.made).to.equal(true);
    expect((await store.findByApiKey(made.apiKey))?.account.id).to.equal(made.account);
  });

  it('the welcome names the codes as a person presses them, the key, the phones and the steps', function () {
    const metaflows = validateMetaflows(DEMO_METAFLOWS, modules, { dialRoutes: ['default', 'sandbox'] });
    expect(codesOf(metaflows)).to.deep.equal(['*21 + number transfer', '*22 resume']);
    expect(codesOf(validateMetaflows({ patterns: { '^7[0-9]+$': { module: 'transfer' } } }, modules))).to.deep.equal(['*/^7[0-9]+$/ transfer']);
    expect(codesOf(null)).to.deep.equal([]);
    const text = welcomeText({
      web: 'http://127.0.0.1:8000/', account: 'abc', apiKey: 'kmi_x', keptIn: 'data/demo-account', passwords: true, metaflows,
      sip: { address: '127.0.0.1:5060', phones: [{ number: '1001', name: 'Alice', password: 'pw1' }, { number: '1002', name: 'Bob', password: 'pw2' }] },
    });
    expect(text).to.contain('Web app    http://127.0.0.1:8000/').and.to.contain('API key    kmi_x')
      .and.to.contain('*21 + number transfer, *22 resume').and.to.contain('at 127.0.0.1:5060 (UDP)')
      .and.to.contain('    1001  Alice  password pw1').and.to.contain('    1002  Bob    password pw2')
      .and.to.contain('1. Call 1002 from 1001 (Alice); answer on 1002 (Bob).');
    // Where no one asked to see them (a log, not a terminal), the secrets are not printed: where they are is.
    const quiet = welcomeText({
      web: 'http://127.0.0.1:8000/', account: 'abc', apiKey: undefined, keptIn: 'data/demo-account', passwords: false, metaflows,
      sip: { address: '127.0.0.1:5060', phones: [{ number: '1001', name: 'Alice', password: 'pw1' }] },
    });
    expect(quiet).to.contain('API key    in data/demo-account').and.to.contain('1001  Alice  password: npm run sandbox -- phones');
    expect(quiet).not.to.contain('pw1');
  });
});
