import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { freePort } from '../harness/process.js';
import { sandboxEnv, sandboxRunning } from '../harness/sandbox.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts konami as its own process (as `npm start` does), optionally sending SIGTERM after termAfterMs. */
function runKonami(env: Record<string, string>, termAfterMs?: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], {
      env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', DATA_DIR: 'test-output/startup-data', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const hardStop = setTimeout(() => child.kill('SIGKILL'), 15_000);
    if (termAfterMs !== undefined) setTimeout(() => child.kill('SIGTERM'), termAfterMs);
    child.on('exit', (code) => {
      clearTimeout(hardStop);
      resolve({ code, stdout, stderr });
    });
  });
}

const logLines = (out: string) =>
  out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; level: number; reason?: string });

describe('Starting konami', function () {
  this.timeout(20_000);

  it('with a wrong ARI password: a clear error naming the settings, exit code 3, no stack trace', async function () {
    const env = sandboxEnv();
    const run = await runKonami({ ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: 'not-the-password' });
    expect(run.code).to.equal(3);
    expect(run.stderr).to.contain('refused ARI_USERNAME/ARI_PASSWORD');
    expect(run.stderr + run.stdout).not.to.match(/\n\s+at /);
    expect(run.stdout + run.stderr).not.to.contain('not-the-password');
  });

  it('with ARI unreachable: it keeps retrying with a log line per attempt, and SIGTERM ends it cleanly', async function () {
    const run = await runKonami({ ARI_URL: 'http://127.0.0.1:9', ARI_USERNAME: 'konami', ARI_PASSWORD: 'x' }, 2500);
    const retries = logLines(run.stdout).filter((l) => l.msg.startsWith('ARI not available'));
    expect(retries.length, 'retry log lines').to.be.at.least(2);
    expect(retries[0]!.reason).to.contain('not reachable');
    expect(run.code).to.equal(0);
    expect(run.stderr).not.to.match(/\n\s+at /);
  });

  it('with bad settings: exit code 2 and every bad setting named', async function () {
    const run = await runKonami({ ARI_URL: 'ftp://x', ARI_USERNAME: 'konami', ARI_PASSWORD: 'x', RING_TIMEOUT: 'soon' });
    expect(run.code).to.equal(2);
    expect(run.stderr).to.contain('ARI_URL').and.to.contain('RING_TIMEOUT');
  });

  it('with the right settings: it registers with ARI and answers /readyz', async function () {
    const env = sandboxEnv();
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '', ARI_URL: env.url, ARI_USERNAME: env.username, ARI_PASSWORD: env.password,
        ARI_APP: 'konami-startup-check', HTTP_PORT: '0', DATA_DIR: 'test-output/startup-data',
      },
    });
    try {
      const lines: Array<{ msg: string; port?: number }> = [];
      let buffered = '';
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop() ?? '';
        for (const p of parts) if (p.startsWith('{')) lines.push(JSON.parse(p) as { msg: string; port?: number });
      });
      const deadline = Date.now() + 10_000;
      while (!lines.some((l) => l.msg === 'connected to ARI') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const port = lines.find((l) => l.msg === 'HTTP API listening')?.port;
      expect(port, 'HTTP port logged').to.be.a('number');
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.include({ status: 'ready' });
      const apps = (await (await fetch(`${env.url}/ari/applications`, {
        headers: { authorization: `Basic ${Buffer.from(`${env.username}:${env.password}`).toString('base64')}` },
      })).json()) as Array<{ name: string }>;
      expect(apps.map((a) => a.name)).to.include('konami-startup-check');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('`npm start` with no ARI_URL runs against the sandbox with its dial template, and leaves a sandbox it did not start running', async function () {
    this.timeout(90_000);
    const port = await freePort();
    const child = spawn('bash', ['scripts/start.sh'], {
      env: {
        // The same sandbox as the tests' (its cache and ports may be set).
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('KONAMI_SANDBOX_'))),
        PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', HTTP_PORT: String(port), ARI_APP: 'konami-start-check', DATA_DIR: 'test-output/start-data',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline && child.exitCode === null) {
        status = (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status ?? 0;
        if (status !== 200) await new Promise((r) => setTimeout(r, 250));
      }
      expect(status, `konami ready:\n${stderr}`).to.equal(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
    expect(sandboxRunning(), 'the sandbox the tests started is still running').to.equal(true);
  });
});
