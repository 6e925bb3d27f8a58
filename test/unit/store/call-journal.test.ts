// The file journal of calls in progress (lib/store/call-journal.ts).
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../../lib/log.js';
import { FileCallJournal } from '../../../lib/store/call-journal.js';

describe('the file journal of calls in progress', function () {
  let dir: string;
  let journal: FileCallJournal;

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), 'konami-journal-'));
    journal = await FileCallJournal.open(dir, silentLogger());
  });

  const onDisk = (id: string) => JSON.parse(readFileSync(join(dir, 'calls', `${id}.json`), 'utf8')) as { n: number };

  it('keeps the newest version of a call, however fast versions come', async function () {
    for (let n = 1; n <= 50; n++) journal.save('call-1', JSON.stringify({ n }));
    await journal.flush();
    expect(onDisk('call-1').n).to.equal(50);
  });

  it('a version given just as a write finishes is written too (never lost between two writes)', async function () {
    for (let n = 1; n <= 200; n++) {
      journal.save('call-1', JSON.stringify({ n }));
      // Let the writer get as far as finishing, every few versions, at different points.
      for (let i = 0; i < n % 7; i++) await Promise.resolve();
      if (n % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await journal.flush();
    expect(onDisk('call-1').n).to.equal(200);
  });

  it('saveNow resolves once that version is on disk', async function () {
    journal.save('call-1', JSON.stringify({ n: 1 }));
    await journal.saveNow('call-1', JSON.stringify({ n: 2 }));
    expect(onDisk('call-1').n).to.equal(2);
  });

  it("keeps calls readable by konami's user only: files 0600 in a folder 0700", async function () {
    await journal.saveNow('call-1', JSON.stringify({ n: 1 }));
    expect(statSync(join(dir, 'calls', 'call-1.json')).mode & 0o777).to.equal(0o600);
    expect(statSync(join(dir, 'calls')).mode & 0o777).to.equal(0o700);
  });

  it('forgets a call that ended, and loads every kept call, skipping an unreadable one', async function () {
    await journal.saveNow('a', JSON.stringify({ n: 1 }));
    await journal.saveNow('b', JSON.stringify({ n: 2 }));
    journal.remove('a');
    await journal.flush();
    writeFileSync(join(dir, 'calls', 'broken.json'), '{"n": ');
    writeFileSync(join(dir, 'calls', 'c.json.2147483646-0123456789ab.tmp'), 'half');
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(dir, 'calls', 'c.json.2147483646-0123456789ab.tmp'), hoursAgo, hoursAgo);
    const again = await FileCallJournal.open(dir, silentLogger());
    expect(await again.loadAll()).to.deep.equal([{ id: 'b', state: { n: 2 } }]);
    expect(readdirSync(join(dir, 'calls')).sort(), 'temporary files swept').to.deep.equal(['b.json', 'broken.json']);
  });

  it('saveNow rejects when the version could not be written (konami must know its record is not on disk)', async function () {
    rmSync(join(dir, 'calls'), { recursive: true });
    writeFileSync(join(dir, 'calls'), 'not a folder');
    let err: Error | undefined;
    await journal.saveNow('call-1', '{}').catch((e: Error) => (err = e));
    expect(err?.message).to.match(/ENOTDIR|EEXIST|ENOENT/);
    journal.save('call-2', '{}');
    await journal.flush();
  });

  it('refuses a call id unfit for a file name', async function () {
    let err: Error | undefined;
    await journal.saveNow('../x', '{}').catch((e: Error) => (err = e));
    expect(err?.message).to.contain('not fit for a file name');
  });
});
