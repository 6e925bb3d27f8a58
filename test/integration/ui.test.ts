// The web app end to end: headless Debian Chromium (driven by playwright-core)
// against a running konami and the real Asterisk. An admin signs in and
// enables transfer and resume; a user sees a live call, transfers it, watches
// Mary's phone ring and the state change, and cancels.
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Konami } from '../../lib/main.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { eventually } from '../harness/asterisk.js';
import { expectBridges, side } from '../harness/bridges.js';
import { OUTPUT_DIR, startTestKonami } from '../harness/konami.js';
import { Phones } from '../harness/phones.js';
import { sandboxEnv } from '../harness/sandbox.js';

const SHOTS = join(OUTPUT_DIR, 'screenshots');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const USER_PASSWORD = 'alice password';

describe('The web app in headless Chromium, on the real Asterisk', function () {
  this.timeout(60_000);
  let phones: Phones;
  let konami: Konami;
  let browser: Browser;
  let page: Page;
  let account: string;
  let apiKey: string;
  const problems: string[] = [];

  before(async function () {
    mkdirSync(SHOTS, { recursive: true });
    const env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    konami = await startTestKonami(env);
    const created = await konami.store.create('Web');
    account = created.account.id;
    apiKey = created.apiKey;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });

  after(async function () {
    await browser?.close();
    await konami?.stop(1000);
    await phones?.stop();
  });

  beforeEach(async function () {
    page = await browser.newPage({ viewport: PHONE });
    // The browser logs every 4xx answer as a console error; the API's 400 and
    // 401 are answers the app shows, so only other failures count.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
    });
    page.on('response', (r) => {
      const api = new URL(r.url()).pathname.startsWith('/v1/');
      if (r.status() >= 500 || (r.status() >= 400 && !api)) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  afterEach(async function () {
    await page.close();
    await phones.checkNothingLeftAndReset();
  });

  const url = () => `http://127.0.0.1:${konami.http.port}/`;

  /**
   * Signs in as the account's administrator; with the right key, once the Calls page shows. Headings are matched
   * exactly: the sign-in page's own "Your calls" would match "Calls" before the sign-in is through.
   */
  async function signIn(key = apiKey): Promise<void> {
    await page.goto(url());
    // The app's modules are loaded before anything is typed, as a person's eyes would wait for the page.
    await page.waitForFunction('document.getElementById("page-sign-in").hidden === false');
    await page.getByLabel('Account API key').fill(key);
    await page.keyboard.press('Enter');
    if (key === apiKey) await page.getByRole('heading', { name: 'Calls', exact: true }).waitFor();
  }

  async function shoot(name: string): Promise<void> {
    for (const [size, viewport] of [['phone', PHONE], ['desktop', DESKTOP]] as const) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(PHONE);
  }

  it('refuses a wrong API key with a message, and keeps no key in the browser', async function () {
    await page.goto(url());
    await page.waitForFunction('document.getElementById("page-sign-in").hidden === false');
    expect(await page.getByRole('link', { name: 'Features' }).isVisible(), 'no page link before signing in').to.equal(false);
    await signIn('kmi_wrong');
    await page.getByText('That API key is not valid.').waitFor();
    await signIn();
    await page.getByRole('heading', { name: 'Calls', exact: true }).waitFor();
    const stored = await page.evaluate<string>('JSON.stringify({ ...sessionStorage, ...localStorage })');
    expect(stored).not.to.contain(apiKey);
    expect(stored).to.contain('konami.token');
  });

  it('Sign out revokes the token at the server: a copy of it no longer works', async function () {
    await signIn();
    await page.getByRole('heading', { name: 'Calls', exact: true }).waitFor();
    const token = await page.evaluate<string>("sessionStorage.getItem('konami.token')");
    const account = await page.evaluate<string>("sessionStorage.getItem('konami.account')");
    expect(token, 'the token the app keeps after signing in').to.be.a('string');
    // The status, with the answer's message when it is not 200 (why a token was refused).
    const channels = async () => {
      const res = await fetch(`${url()}v1/accounts/${account}/channels`, { headers: { 'x-auth-token': token } });
      return res.status === 200 ? 200 : `${res.status} ${JSON.stringify(await res.json())}`;
    };
    expect(await channels()).to.equal(200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    expect(await channels()).to.match(/^401 .*signed out/);
  });

  it('admin: enables transfer and resume; a refused value is shown next to its field', async function () {
    await konami.store.setMetaflows(account, null);
    await signIn();
    await page.getByRole('link', { name: 'Features' }).click();
    await page.getByRole('heading', { name: 'Features', exact: true }).waitFor();
    await page.getByLabel('Transfer', { exact: true }).check();
    await page.getByLabel('Resume (cancel a transfer)').check();
    await page.getByLabel('Digit timeout (ms)').fill('100');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.locator('#digit-timeout-error').getByText('must be greater than or equal to 300').waitFor();
    expect((await konami.store.get(account))?.metaflows, 'nothing saved').to.equal(null);
    await page.getByLabel('Digit timeout (ms)').fill('1500');
    await page.getByLabel('Ring timeout (s)').fill('15');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    const saved = (await konami.store.get(account))?.metaflows;
    expect(saved).to.deep.include({ digit_timeout: 1500, listen_on: 'both', binding_digit: '*' });
    expect(saved?.numbers).to.deep.equal({ 22: { module: 'resume', data: {} } });
    expect(saved?.patterns['21(\\d+)']).to.deep.equal({ module: 'transfer', data: { ring_timeout: 15, moh: 'default' } });
    await page.reload();
    await page.getByRole('heading', { name: 'Features', exact: true }).waitFor();
    expect(await page.getByLabel('Ring timeout (s)').inputValue()).to.equal('15');
    await shoot('features');
  });

  it('admin: saving the form over a richer configuration changes only what the page shows; the rest is intact', async function () {
    const rich = {
      binding_digit: '*', digit_timeout: 2000, listen_on: 'b',
      numbers: { 22: { module: 'resume', data: {} }, 99: { module: 'resume', data: {} } },
      patterns: {
        '7(\\d+)': { module: 'transfer', data: { transfer_type: 'blind', recall_attempts: 0 } },
        '21(\\d+)': { module: 'transfer', data: { ring_timeout: 30, recall_attempts: 4, recall_delay: 9, takeback_dtmf: '#9', moh: 'jazz' } },
      },
    };
    // The blind code comes first: the page shows the first transfer code, and keeps the order.
    await konami.store.setMetaflows(account, validateMetaflows(rich, konami.modules, { mohClasses: konami.config.mohClasses }));
    await signIn();
    await page.getByRole('link', { name: 'Features' }).click();
    await page.getByRole('heading', { name: 'Features', exact: true }).waitFor();
    await eventually(() => page.getByLabel('Transfer code (followed by the number)').inputValue(), (v) => v === '7', 'the form to show the first transfer code');
    await page.getByLabel('Ring timeout (s)').fill('25');
    await page.getByLabel('Transfer code (followed by the number)').fill('8');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    const saved = (await konami.store.get(account))!.metaflows!;
    expect(saved.listen_on, 'a setting the form shows as it was stays').to.equal('b');
    expect(saved.numbers, 'the other number is kept').to.deep.equal(rich.numbers);
    expect(Object.keys(saved.patterns), 'the code changed in its place, the other code kept').to.deep.equal(['8(\\d+)', '21(\\d+)']);
    expect(saved.patterns['8(\\d+)']!.data, "the code's other settings kept").to.deep.equal({ transfer_type: 'blind', recall_attempts: 0, ring_timeout: 25, moh: 'default' });
    expect(saved.patterns['21(\\d+)'], 'the second transfer code untouched').to.deep.equal(rich.patterns['21(\\d+)']);
  });

  it('admin: a transfer code that is no plain number keeps its pattern when only a timing changes; a code already taken is refused', async function () {
    const rich = {
      numbers: { 22: { module: 'resume', data: {} } },
      patterns: {
        '2[12](\\d+)': { module: 'transfer', data: { ring_timeout: 30 } },
        '25(\\d+)': { module: 'transfer', data: { recall_attempts: 0 } },
      },
    };
    await konami.store.setMetaflows(account, validateMetaflows(rich, konami.modules));
    await signIn();
    await page.getByRole('link', { name: 'Features' }).click();
    const code = page.getByLabel('Transfer code (followed by the number)');
    await eventually(() => code.inputValue(), (v) => v === '2[12](\\d+)', 'the form to show the pattern as it is');
    await page.getByLabel('Ring timeout (s)').fill('45');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    const saved = (await konami.store.get(account))!.metaflows!;
    expect(Object.keys(saved.patterns), 'the pattern kept exactly').to.deep.equal(['2[12](\\d+)', '25(\\d+)']);
    expect(saved.patterns['2[12](\\d+)']!.data).to.deep.equal({ ring_timeout: 45, moh: 'default' });
    await code.fill('25');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.locator('#transfer-code-error').getByText('is already another code').waitFor();
    expect((await konami.store.get(account))!.metaflows, 'nothing saved').to.deep.equal(saved);
  });

  it("admin: the specification's metaflows, pasted as JSON, are saved as written and shown back in konami's spelling", async function () {
    await konami.store.setMetaflows(account, null);
    await signIn();
    await page.getByRole('link', { name: 'Features' }).click();
    await page.getByRole('heading', { name: 'Features', exact: true }).waitFor();
    await page.getByText('All codes as JSON').click();
    const spec = '{"metaflows": {"numbers": {"22": {"module": "resume", "data": {}}}, "patterns": {"21(\\\\d+)": {"module": "transfer", "data": {}}}, "binding_key": "*"}}';
    await page.getByLabel('Metaflows (JSON)').fill(spec);
    await page.getByRole('button', { name: 'Save JSON' }).click();
    await page.getByText('Saved.').waitFor();
    const saved = (await konami.store.get(account))!.metaflows!;
    expect(saved).to.deep.include({ binding_digit: '*', numbers: { 22: { module: 'resume', data: {} } }, patterns: { '21(\\d+)': { module: 'transfer', data: {} } } });
    expect(JSON.parse(await page.getByLabel('Metaflows (JSON)').inputValue())).to.deep.equal(saved);
    expect(await page.getByLabel('Transfer', { exact: true }).isChecked()).to.equal(true);
    await page.getByLabel('Metaflows (JSON)').fill('{"patterns": {"21(": {"module": "transfer"}}}');
    await page.getByRole('button', { name: 'Save JSON' }).click();
    await page.locator('#metaflows-json-error').getByText('is not a valid pattern').waitFor();
  });

  it('user: one card per call naming both parties; "Transfer 5901" rings Mary, the state changes, Cancel brings Alice back to Bob', async function () {
    await signIn();
    await page.getByRole('heading', { name: 'Calls', exact: true }).waitFor();
    const alice = await phones.call('5901', { account, from: { number: '1001', name: 'Alice' } });
    const bob = await phones.incoming('5901');
    await bob.answer();
    const row = page.locator(`li[data-id="${alice.peerId}"]`);
    await row.getByText('Alice (1001) → 5901').waitFor();
    await row.getByText('answered').waitFor();
    expect(await page.locator('#calls li').count(), 'one card for the call, not one per party').to.equal(1);
    expect(await row.getByRole('button', { name: 'Transfer Alice (1001)' }).count()).to.equal(1);
    await row.getByLabel('Transfer to').fill('2650');
    await row.getByRole('button', { name: 'Transfer 5901' }).click();
    const mary = await phones.incoming('2650');
    await mary.ring();
    await row.getByText('Transferring 5901 to 2650: ringing').waitFor();
    await shoot('calls');
    await mary.answer();
    await row.getByText('Transferring 5901 to 2650: talking to target').waitFor();
    await row.getByRole('button', { name: 'Cancel transfer' }).click();
    await mary.waitHangup(3000);
    await row.getByText('Last transfer to 2650: cancelled').waitFor();
    await expectBridges(phones.ari, alice.peerId!, { main: [alice.peerId!, side(bob)] }, 'Alice back with Bob');
    await alice.hangup();
    await bob.waitHangup();
    await eventually(async () => row.count(), (c) => c === 0, 'the call to leave the page');
  });

  it('admin: adds a user on the Users page; a number already taken is refused next to its field', async function () {
    await signIn();
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: 'Users', exact: true }).waitFor();
    const form = page.locator('#user-form');
    await form.getByLabel('Username').fill('alice');
    await form.getByLabel('Name', { exact: true }).fill('Alice');
    await form.getByLabel('Numbers (comma separated)').fill('1001');
    await form.getByLabel('Password (at least 8 characters)').fill(USER_PASSWORD);
    await form.getByRole('button', { name: 'Add user' }).click();
    await page.locator('#users li').getByText('alice (Alice)').waitFor();
    const users = (await konami.store.get(account))!.users!;
    expect(users.map((u) => [u.username, u.numbers])).to.deep.equal([['alice', ['1001']]]);
    await form.getByLabel('Username').fill('bob');
    await form.getByLabel('Numbers (comma separated)').fill('1001');
    await form.getByLabel('Password (at least 8 characters)').fill('bob password');
    await form.getByRole('button', { name: 'Add user' }).click();
    await page.locator('#user-numbers-error').getByText("1001 is already alice's").waitFor();
    await shoot('users');
  });

  it("user, on a phone: signs in with their password, sees only their own call, live; Transfer rings Mary, Cancel brings Bob back", async function () {
    const channelReads: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.endsWith('/channels')) channelReads.push(r.url());
    });
    await page.goto(url());
    await page.waitForFunction('document.getElementById("page-sign-in").hidden === false');
    const signIn = page.locator('#user-sign-in-form');
    await signIn.getByLabel('Account (name or id)').fill('Web');
    await signIn.getByLabel('Username').fill('alice');
    await signIn.getByLabel('Password').fill(USER_PASSWORD);
    await signIn.getByRole('button', { name: 'Sign in to your calls' }).click();
    await page.getByRole('heading', { name: 'My calls', exact: true }).waitFor();
    expect(await page.getByRole('link', { name: 'Features' }).isVisible(), "a user sees none of the administrator's pages").to.equal(false);
    const stranger = await phones.call('5903', { account, from: { number: '1002', name: 'Carol' } });
    const dave = await phones.incoming('5903');
    await dave.answer();
    const alice = await phones.call('5902', { account, from: { number: '1001', name: 'Alice' } });
    const bob = await phones.incoming('5902');
    await bob.answer();
    const card = page.locator(`#mine li[data-id="${alice.peerId}"]`);
    await card.getByText('answered').waitFor();
    expect(await page.locator('#mine li').count(), "Carol's call is not Alice's").to.equal(1);
    await card.getByLabel('Number to transfer to').fill('2651');
    await card.getByRole('button', { name: 'Transfer 5902' }).click();
    const mary = await phones.incoming('2651');
    await mary.ring();
    await card.getByText('Transferring 5902 to 2651: ringing').waitFor();
    await shoot('my-calls');
    await card.getByRole('button', { name: 'Cancel transfer' }).click();
    await mary.waitHangup(3000);
    await card.getByText('Last transfer to 2651: cancelled').waitFor();
    await expectBridges(phones.ari, alice.peerId!, {
      main: [alice.peerId!, side(bob)], [`konami/${stranger.peerId}`]: [stranger.peerId!, side(dave)],
    }, 'Alice back with Bob; Carol still with Dave');
    await alice.hangup();
    await bob.waitHangup();
    await eventually(async () => card.count(), (c) => c === 0, 'the call to leave the page');
    expect(channelReads.length, `the page follows events, it does not poll: ${channelReads.length} reads`).to.be.at.most(2);
    await stranger.hangup();
    await dave.waitHangup();
  });

  it('is usable with the keyboard alone, and no page logged an error', async function () {
    await page.goto(url());
    await page.keyboard.press('Tab');
    const focused = async () => page.evaluate<string | undefined>('document.activeElement && document.activeElement.id');
    expect(await focused(), 'the user sign-in comes first').to.equal('sign-in-account');
    // Account, username, password, the user's button, then the administrator's key.
    for (let i = 0; i < 4; i++) await page.keyboard.press('Tab');
    expect(await focused()).to.equal('api-key');
    await page.keyboard.type(apiKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Calls', exact: true }).waitFor();
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });
});
