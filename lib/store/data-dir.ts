// DATA_DIR: konami's folder (accounts, calls in progress, dial routes) and the
// token-signing secret kept in it when AUTH_SECRET is not set. Both are
// konami's alone: the folder is 0700, the secret 0600.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, MIN_SECRET_BYTES, type Config } from '../config.js';
import type { Logger } from '../log.js';
import { createExclusively } from './files.js';

/** Makes DATA_DIR (0700) or tightens one that others may read; stops the start naming it when it cannot be used. */
export async function prepareDataDir(dir: string, log: Logger): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const { mode } = await fs.stat(dir);
    if ((mode & 0o077) !== 0) {
      await fs.chmod(dir, mode & 0o700);
      log.warn({ dir, was: (mode & 0o777).toString(8) }, 'DATA_DIR was open to other users: now 0700');
    }
    await fs.access(dir, fs.constants.W_OK);
  } catch (err) {
    throw new ConfigError([`DATA_DIR: cannot create or write ${JSON.stringify(dir)} (${(err as NodeJS.ErrnoException).code ?? err})`]);
  }
}

/**
 * The token secret: AUTH_SECRET, or one made once and kept in
 * DATA_DIR/auth-secret (shared by instances sharing the folder). A kept
 * secret shorter than 32 bytes (an empty file, say) would let anyone forge
 * tokens: it stops the start, naming the file.
 */
export async function authSecret(config: Pick<Config, 'dataDir'> & { api: Pick<Config['api'], 'authSecret'> }): Promise<Buffer> {
  if (config.api.authSecret) return Buffer.from(config.api.authSecret, 'utf8');
  const file = join(config.dataDir, 'auth-secret');
  await createExclusively(file, `${randomBytes(MIN_SECRET_BYTES).toString('base64')}\n`);
  const text = (await fs.readFile(file, 'utf8')).trim();
  const secret = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || secret.length < MIN_SECRET_BYTES) {
    throw new ConfigError([
      `DATA_DIR/auth-secret: holds ${/^[A-Za-z0-9+/]*={0,2}$/.test(text) ? secret.length : 'no base64'} bytes of secret where at least ${MIN_SECRET_BYTES} are needed `
        + '(remove the file and konami makes a new one; tokens issued so far then stop working), or set AUTH_SECRET',
    ]);
  }
  const { mode } = await fs.stat(file);
  if ((mode & 0o077) !== 0) await fs.chmod(file, 0o600);
  return secret;
}
