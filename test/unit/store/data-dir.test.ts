import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../lib/config.js';
import { silentLogger } from '../../../lib/log.js';
import { authSecret, prepareDataDir } from '../../../lib/store/data-dir.js';

const configFor = (dataDir: string, extra: Record<string, string> = {}) =>
  loadConfig({ ARI_USERNAME: 'konami', ARI_PASSWORD: 'x', DATA_DIR: dataDir, ...extra });

describe('DATA_DIR and the token secret', function () {
  let dir: string;

  beforeEach(function () {
    dir = join(mkdtempSync(join(tmpdir(), 'konami-data-')), 'data');
  });

  it('makes DATA_DIR 0700, and tightens one open to others', async function () {
    await prepareDataDir(dir, silentLogger());
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
    const open = `${dir}-open`;
    mkdirSync(open, { mode: 0o755 });
    await prepareDataDir(open, silentLogger());
    expect(statSync(open).mode & 0o777).to.equal(0o700);
  });

  it('makes a 32-byte secret once, mode 0600, and every later start reads the same', async function () {
    await prepareDataDir(dir, silentLogger());
    const first = await authSecret(configFor(dir));
    expect(first.length).to.equal(32);
    expect(statSync(join(dir, 'auth-secret')).mode & 0o777).to.equal(0o600);
    expect((await authSecret(configFor(dir))).equals(first)).to.equal(true);
    mkdirSync(`${dir}-2`);
    const [a, b] = await Promise.all([authSecret(configFor(`${dir}-2`)), authSecret(configFor(`${dir}-2`))]);
    expect(a!.equals(b!), 'two instances starting at once agree').to.equal(true);
  });

  for (const [what, content] of <Array<[string, string]>>[['an empty file', ''], ['a short secret', `${Buffer.alloc(16, 1).toString('base64')}\n`], ['text that is not base64', 'secret!\n']]) {
    it(`refuses to start on ${what} in auth-secret, naming it (anyone could forge tokens)`, async function () {
      await prepareDataDir(dir, silentLogger());
      writeFileSync(join(dir, 'auth-secret'), content);
      let error: unknown;
      await authSecret(configFor(dir)).catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).message).to.match(/DATA_DIR\/auth-secret: .*at least 32/);
      expect(readFileSync(join(dir, 'auth-secret'), 'utf8'), 'the file is left for the operator').to.equal(content);
    });
  }

  it('AUTH_SECRET shorter than 32 bytes stops the start, naming it and never echoing it', function () {
    let error: unknown;
    try {
      configFor(dir, { AUTH_SECRET: 'short-secret' });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).message).to.match(/AUTH_SECRET: must be at least 32 bytes/).and.not.to.contain('short-secret');
  });
});
