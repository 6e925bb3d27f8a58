// A newcomer's first run, as the README's first screen tells it: `npm start`
// with nothing configured starts a sandbox Asterisk, makes the demo account
// and prints how to try it; `npm run demo` plays the scenario while the web
// app's Calls page shows it live; Ctrl-C stops everything npm start started.
// It runs on the second sandbox instance, which npm start itself starts and
// must stop, so the suite's own sandbox is never touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { DEMO_APP } from '../../lib/demo/play.js';
import { phonesConnection, SimulatedPhones } from '../../lib/demo/phones.js';
import { eventually, konamiBridges } from '../harness/asterisk.js';
import { side } from '../harness/bridges.js';
import { OUTPUT_DIR } from '../harness/konami.js';
import { apiToken, freePort } from '../harness/process.js';
import { sandboxEnv, sandboxRunning, secondSandbox } from '../harness/sandbox.js';
import { Sipp, writeDtmf } from '../harness/sipp.js';

const SECOND = { KONAMI_SANDBOX_INSTANCE: '2' };

/** A command (`npm start`, `npm run demo`) as its own process group, as a terminal runs it. */
class Command {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly child: ChildProcess;

  constructor(args: string[], env: Record<string, string>, command = 'npm') {
    this.child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // 'close': everything it printed has been read. A process ended by a signal has the status a shell gives it (128 + n).
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + osConstants.signals[signal] : null))));
  }

  /** Ctrl-C: SIGINT to the whole group. */
  interrupt(): void {
    process.kill(-this.child.pid!, 'SIGINT');
  }

  /** Something of the group still runs. */
  get groupAlive(): boolean {
    try {
      process.kill(-this.child.pid!, 0);
      return true;
    } catch {
      return false;
    }
  }

  async until(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
    await eventually(async () => pred(), (v) => v, `${what}; stderr so far:\n${this.stderr}`, timeoutMs, 200);
  }
}

describe('First run: npm start on the sandbox, npm run demo, Ctrl-C', function () {
  this.timeout(180_000);
  let start: Command;
  let env: Record<string, string>;
  let web: string;
  let welcome: { apiKey: string; account: string; sip: string; phones: Array<{ number: string; name: string; password: string }> };

  before(async function () {
    // npm start starts this sandbox itself, and must stop it on Ctrl-C.
    if (sandboxRunning(secondSandbox)) secondSandbox('stop');
    const port = await freePort();
    web = `http://127.0.0.1:${port}`;
    // Nothing of konami's configuration: only where the sandbox is kept, as the tests' own sandbox.
    const kept = Object.fromEntries(['KONAMI_SANDBOX_CACHE', 'XDG_CACHE_HOME'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
    env = {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...kept, ...SECOND, HTTP_PORT: String(port),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'konami-first-run-')),
    };
    start = new Command(['start'], env);
    await start.until(() => /API key\s+kmi_/.test(start.stderr) || start.child.exitCode !== null, 'npm start to print the API key', 150_000);
    const text = start.stderr;
    welcome = {
      apiKey: /API key\s+(kmi_\S+)/.exec(text)?.[1] ?? '',
      account: /Account\s+Demo ([0-9a-f]+)/.exec(text)?.[1] ?? '',
      sip: /register a softphone on this machine at (\S+) \(UDP\)/.exec(text)?.[1] ?? '',
      phones: [...text.matchAll(/^ {4}(\d+) {2}(\w+) +password (\S+)$/gm)].map((m) => ({ number: m[1]!, name: m[2]!, password: m[3]! })),
    };
  });

  after(async function () {
    if (start?.groupAlive) {
      start.interrupt();
      await Promise.race([start.exited, new Promise((r) => setTimeout(r, 20_000))]);
    }
    if (sandboxRunning(secondSandbox)) secondSandbox('stop');
  });

  it('prints the web app, the demo API key, the SIP phones and the three steps; the key signs in and finds transfer and resume enabled', async function () {
    expect(start.stderr).to.contain(`Web app    ${web}/`);
    expect(welcome.apiKey, 'the printed API key').to.match(/^kmi_[A-Za-z0-9_-]{40,}$/);
    expect(start.stderr).to.match(/1\. Call 1002 from 1001/).and.to.match(/2\. On 1001 press \*21 2600/).and.to.match(/3\. Hang up 1001/);
    expect(welcome.sip, 'the second sandbox\'s SIP address').to.equal(`127.0.0.1:${secondSandbox('sip-port').trim()}`);
    expect(welcome.phones.map((p) => `${p.number} ${p.name}`)).to.deep.equal(['1001 Alice', '1002 Bob', '2600 Mary']);
    // The key is kept for the demo, readable by konami's user only.
    expect(statSync(join(env.DATA_DIR!, 'demo-account')).mode & 0o077, 'demo-account readable by its owner only').to.equal(0);

    const token = await apiToken(web, welcome.apiKey);
    const res = await fetch(`${web}/v1/accounts/${welcome.account}/metaflows`, { headers: { 'x-auth-token': token } });
    expect(res.status).to.equal(200);
    const { data } = (await res.json()) as { data: { numbers: Record<string, { module: string }>; patterns: Record<string, { module: string }> } };
    expect(data.patterns['21(\\d+)']?.module, 'transfer on *21').to.equal('transfer');
    expect(data.numbers['22']?.module, 'resume on *22').to.equal('resume');
  });

  it('a softphone registers as 1001 with the printed password, and not with another', async function () {
    const port = Number(welcome.sip.split(':')[1]);
    const alice = welcome.phones.find((p) => p.number === '1001')!;
    const register = async (password: string, local: number) => {
      const sipp = Sipp.start('register', {
        scenario: 'register.xml', remote: welcome.sip, port: local, service: '1001', pauseMs: 0, auth: { username: '1001', password }, env: { ...process.env, ...SECOND },
      });
      return { code: await sipp.result(), output: sipp.output };
    };
    const wrong = await register(`${alice.password}x`, port + 21);
    expect(wrong.code, 'a wrong password refused').to.not.equal(0);
    expect(wrong.output, 'refused by a second challenge or a 403').to.match(/while expecting '200'.*received 'SIP\/2\.0 (401|403)/);
    expect(await register(alice.password, port + 22), 'the printed password accepted').to.deep.include({ code: 0 });
    expect(secondSandbox('cli', 'pjsip show contacts'), 'Asterisk lists the registration').to.contain(`1001/sip:1001@127.0.0.1:${port + 22}`);
  });

  it('the softphone 1001 calls 1002 and presses *21 2600: the call is the demo account\'s; Alice hangs up and Bob and Mary talk', async function () {
    const alice = welcome.phones.find((p) => p.number === '1001')!;
    const port = Number(welcome.sip.split(':')[1]);
    // Nobody registered 1002 or 2600: they reach the demo's phones, played here.
    const phones = new SimulatedPhones(await phonesConnection(sandboxEnv(secondSandbox), DEMO_APP), DEMO_APP);
    try {
      writeDtmf('softphone-dtmf', '*212600#', SECOND.KONAMI_SANDBOX_INSTANCE);
      const call = Sipp.start('softphone', {
        scenario: 'softphone-transfers.xml', remote: welcome.sip, port: port + 31, service: '1002', pauseMs: 6000,
        auth: { username: '1001', password: alice.password }, env: { ...process.env, ...SECOND },
      });
      const bob = await phones.incoming('1002', 15_000);
      await bob.answer();
      const token = await apiToken(web, welcome.apiKey);
      const listed = await eventually(async () => {
        const res = await fetch(`${web}/v1/accounts/${welcome.account}/channels`, { headers: { 'x-auth-token': token } });
        return JSON.stringify(((await res.json()) as { data: unknown[] }).data);
      }, (text) => text.includes('"Alice"'), "the demo account's channels to list Alice's call", 5000);
      expect(listed, 'the call, on the demo account').to.contain('1002');
      const mary = await phones.incoming('2600', 15_000);
      await mary.ring();
      await mary.answer();
      expect(await call.result(), `the softphone's call; sipp said:\n${call.output}`).to.equal(0);
      const ari = phones.ari;
      await eventually(async () => (await konamiBridges(ari)).map((b) => [...b.channels].sort().join(',')),
        (bridges) => bridges.includes([side(bob), side(mary)].sort().join(',')), 'Bob and Mary in one bridge', 5000);
      await mary.hangup();
      await bob.waitHangup();
    } finally {
      await phones.close();
      await phones.stop();
    }
  });

  it('npm run demo tells the scenario in order and ends with 0, while the Calls page shows the calls and their transfers live', async function () {
    const shots = join(OUTPUT_DIR, 'screenshots');
    mkdirSync(shots, { recursive: true });
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = await browser.newPage({ viewport: { width: 960, height: 330 } });
      await page.goto(`${web}/`);
      await page.waitForFunction('document.getElementById("page-sign-in").hidden === false');
      await page.getByLabel('Account API key').fill(welcome.apiKey);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Calls', exact: true }).waitFor();

      const demo = new Command(['run', '--silent', 'demo', '--', '--pause', '1'], env);
      // The page follows the demo's first transfer as it happens.
      const card = page.locator('#calls li').filter({ hasText: 'Alice (1001) → 1002' }).first();
      await card.getByText('Transferring 1002 to 2600: ringing').waitFor({ timeout: 60_000 });
      await card.getByText('Transferring 1002 to 2600: talking to target').waitFor({ timeout: 20_000 });
      await page.screenshot({ path: join(shots, 'first-run-calls.png') });
      const code = await demo.exited;
      expect(code, `npm run demo's exit status; its output:\n${demo.stdout}\n${demo.stderr}`).to.equal(0);

      // The narrated steps, in the order they happened.
      const expected = [
        '1. Alice transfers Bob to Mary with *21 2600',
        'Alice (1001) calls 1002', "Asterisk: 1002 is ringing (Bob's phone)", 'Bob answers', 'Asterisk: Alice and Bob talk',
        'Alice presses *21 2600 #', "Asterisk: 2600 is ringing (Mary's phone)", 'Asterisk: Bob hears music on hold',
        "Asterisk: Alice waits in the consultation while Mary's phone rings", 'Mary answers', 'Asterisk: Alice and Mary talk; Bob still hears music',
        'Alice hangs up', 'Asterisk: Bob and Mary talk; the music stopped', 'Mary hangs up', 'Asterisk: the call is over',
        '2. The same transfer asked for through the REST API',
        'Alice (1001) calls 1002', 'Asterisk: Alice and Bob talk', `POST /v1/accounts/${welcome.account}/channels/`, '{"data":{"action":"transfer","target":"2600"}} → 202',
        "Asterisk: 2600 is ringing (Mary's phone)", 'Asterisk: Bob hears music on hold', 'Mary answers', 'Asterisk: Alice and Mary talk',
        'Alice hangs up', 'Asterisk: Bob and Mary talk; the music stopped', 'Asterisk: the call is over',
        '3. Alice changes her mind: *22 cancels',
        'Alice (1001) calls 1002', 'Asterisk: Alice and Bob talk', 'Alice presses *21 2600 #', "Asterisk: 2600 is ringing (Mary's phone)",
        'Asterisk: Bob hears music on hold', 'Alice presses *22', "Asterisk: Mary's phone stops ringing", 'Asterisk: Alice and Bob talk again; the music stopped',
        'Alice hangs up', 'Asterisk: the call is over',
        'Every step happened as expected.',
      ];
      let at = 0;
      for (const step of expected) {
        const found = demo.stdout.indexOf(step, at);
        expect(found, `"${step}" after position ${at} of the demo's story:\n${demo.stdout}`).to.be.at.least(0);
        at = found + step.length;
      }
      // The page is live: the calls are gone from it once they ended.
      await eventually(async () => page.locator('#calls li').count(), (n) => n === 0, 'the Calls page to be empty after the demo', 5000);
    } finally {
      await browser?.close();
    }
  });

  it('Ctrl-C in the demo (its own process): it says so, ends with 130, and every call it made is gone from Asterisk', async function () {
    // The demo's own process (npm would answer 130 for any child a Ctrl-C ends), built by the run above.
    const demo = new Command(['dist/lib/demo/play.js', '--pause', '5'], env, process.execPath);
    await demo.until(() => demo.stdout.includes('Asterisk: Alice and Bob talk'), 'the demo\'s first call to be up', 60_000);
    demo.interrupt();
    expect(await demo.exited, `the demo's exit status; it said:\n${demo.stdout}\n${demo.stderr}`).to.equal(130);
    expect(demo.stderr).to.contain('demo: stopping: every phone of the demo hangs up');
    expect(demo.stdout, 'nothing told after Ctrl-C').not.to.contain('Alice presses');
    const ari = new SimulatedPhones(await phonesConnection(sandboxEnv(secondSandbox), DEMO_APP), DEMO_APP);
    try {
      await eventually(async () => ({ channels: (await ari.ari.listChannels()).map((c) => c.name), bridges: (await konamiBridges(ari.ari)).map((b) => b.name) }),
        (left) => left.channels.length === 0 && left.bridges.length === 0, 'no channel and no bridge of the demo left', 5000);
    } finally {
      await ari.stop();
    }
  });

  it('Ctrl-C says what it stops, stops konami and the sandbox it started, and leaves nothing running', async function () {
    start.interrupt();
    const code = await Promise.race([start.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000))]);
    expect(code, `npm start's exit; stderr:\n${start.stderr}`).to.not.equal('late');
    expect(start.stderr).to.contain('npm start: stopping konami').and.to.contain('npm start: konami stopped')
      .and.to.contain('npm start: stopping the sandbox Asterisk this started')
      .and.to.contain('nothing of this run is left running');
    expect(start.stdout, "konami's own log of its stop").to.match(/"msg":"stopped"/);
    await eventually(async () => start.groupAlive, (alive) => !alive, 'every process npm start ran to have ended', 5000);
    expect(sandboxRunning(secondSandbox), 'the sandbox npm start started').to.equal(false);
  });

  it('the terminal closed (SIGHUP): konami stops as for Ctrl-C, and so does the sandbox npm start started', async function () {
    const run = new Command(['start'], env);
    await run.until(() => /konami is running on the sandbox/.test(run.stderr), 'npm start to print its welcome again', 120_000);
    expect(run.stderr, 'the key, known from the first start, not printed again into a pipe').to.contain('API key    in ').and.not.to.contain(welcome.apiKey);
    process.kill(-run.child.pid!, 'SIGHUP');
    const code = await Promise.race([run.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000))]);
    expect(code, `npm start's exit; stderr:\n${run.stderr}`).to.not.equal('late');
    expect(run.stdout, "konami's own stop, not death by the signal").to.match(/"signal":"SIGHUP".*"msg":"shutting down"/).and.to.match(/"msg":"stopped"/);
    expect(run.stderr).to.contain('npm start: stopping the sandbox Asterisk this started');
    await eventually(async () => run.groupAlive, (alive) => !alive, 'every process npm start ran to have ended', 5000);
    expect(sandboxRunning(secondSandbox), 'the sandbox npm start started').to.equal(false);
  });

  it('a bad setting: npm start names it, ends with konami\'s status 2, and stops the sandbox it started', async function () {
    const bad = new Command(['start'], { ...env, RING_TIMEOUT: 'soon' });
    const code = await Promise.race([bad.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 120_000))]);
    expect(code, `npm start's exit; stderr:\n${bad.stderr}`).to.equal(2);
    expect(bad.stderr).to.contain('RING_TIMEOUT').and.to.contain('npm start: konami stopped (exit status 2)')
      .and.to.contain('npm start: stopping the sandbox Asterisk this started');
    expect(bad.stderr, 'no demo account for a konami that never ran').not.to.contain('API key');
    await eventually(async () => bad.groupAlive, (alive) => !alive, 'every process npm start ran to have ended', 5000);
    expect(sandboxRunning(secondSandbox), 'the sandbox npm start started').to.equal(false);
  });
});
