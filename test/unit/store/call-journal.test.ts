// The file journal of calls in progress (lib/store/call-journal.ts).
import { mkdtempSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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

  const file = () => join(dir, 'calls', 'journal');
  /** What a konami started again takes back (and that konami's journal is the one used from then on). */
  const reloaded = async () => {
    journal = await FileCallJournal.open(dir, silentLogger());
    return journal.loadAll();
  };
  const stateOf = async (id: string) => (await reloaded()).find((c) => c.id === id)?.state as { n: number } | undefined;

  it('keeps the newest version of a call, however fast versions come', async function () {
    for (let n = 1; n <= 50; n++) journal.save('call-1', JSON.stringify({ n }));
    await journal.flush();
    expect((await stateOf('call-1'))?.n).to.equal(50);
  });

  it('a version given just as a write finishes is written too (never lost between two writes)', async function () {
    for (let n = 1; n <= 200; n++) {
      journal.save('call-1', JSON.stringify({ n }));
      // Let the writer get as far as finishing, every few versions, at different points.
      for (let i = 0; i < n % 7; i++) await Promise.resolve();
      if (n % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await journal.flush();
    expect((await stateOf('call-1'))?.n).to.equal(200);
  });

  it('saveNow resolves once that version is in the file', async function () {
    journal.save('call-1', JSON.stringify({ n: 1 }));
    await journal.saveNow('call-1', JSON.stringify({ n: 2 }));
    expect(readFileSync(file(), 'utf8')).to.contain('call-1 {"n":2}\n');
  });

  /** Counts the journal's appends (each one write to the file). */
  const countAppends = () => {
    const j = journal as unknown as { append: (text: string) => void };
    const append = j.append.bind(j);
    const seen = { writes: 0 };
    j.append = (text: string) => {
      seen.writes++;
      append(text);
    };
    return seen;
  };

  it('versions of many calls given in one turn reach the disk in one write; a version awaited is written in the same turn', async function () {
    const seen = countAppends();
    for (let i = 0; i < 100; i++) journal.save(`call-${i}`, JSON.stringify({ n: i }));
    await journal.flush();
    expect(seen.writes).to.equal(1);
    void journal.saveNow('now', '{"n":1}');
    expect(readFileSync(file(), 'utf8'), 'written before saveNow returned').to.contain('now {"n":1}\n');
    expect(seen.writes).to.equal(2);
    expect((await reloaded()).length).to.equal(101);
  });

  it('a version awaited after a turn whose versions were all written already is written too (the writer is never left stale)', async function () {
    journal.save('x', '{"n":1}'); // the end of this turn is asked to write
    await journal.saveNow('y', '{"n":2}'); // written at once, x with it
    await new Promise((r) => setImmediate(r)); // the end of the turn finds nothing left
    const late = await Promise.race([journal.saveNow('z', '{"n":3}').then(() => 'written'), new Promise((r) => setTimeout(r, 500, 'stuck'))]);
    expect(late).to.equal('written');
    expect((await reloaded()).map((c) => c.id)).to.deep.equal(['x', 'y', 'z']);
  });

  it("keeps calls readable by konami's user only: file 0600 in a folder 0700", async function () {
    await journal.saveNow('call-1', JSON.stringify({ n: 1 }));
    expect(statSync(file()).mode & 0o777).to.equal(0o600);
    expect(statSync(join(dir, 'calls')).mode & 0o777).to.equal(0o700);
  });

  it('forgets a call that ended, is emptied when no call is left, and loads every kept call, skipping a line written in part', async function () {
    await journal.saveNow('a', JSON.stringify({ n: 1 }));
    await journal.saveNow('b', JSON.stringify({ n: 2 }));
    journal.remove('a');
    await journal.flush();
    expect(await reloaded()).to.deep.equal([{ id: 'b', state: { n: 2 } }]);
    journal.remove('b');
    await journal.flush();
    expect(statSync(file()).size, 'emptied').to.equal(0);
    // A konami killed in the middle of a write (or a machine that died) left part of a line: a call's
    // earlier version stands (c), a call with none is not known (d).
    writeFileSync(file(), 'c {"n":3}\nc {"n":4,"pa');
    expect(await reloaded()).to.deep.equal([{ id: 'c', state: { n: 3 } }]);
    writeFileSync(file(), 'c {"n":3}\nc {"n": \nd {"n": ');
    writeFileSync(join(dir, 'calls', 'journal.2147483646-0123456789ab.tmp'), 'half');
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(dir, 'calls', 'journal.2147483646-0123456789ab.tmp'), hoursAgo, hoursAgo);
    expect(await reloaded()).to.deep.equal([{ id: 'c', state: { n: 3 } }]);
    expect(readdirSync(join(dir, 'calls')), 'temporary files swept').to.deep.equal(['journal']);
    expect(readFileSync(file(), 'utf8'), 'rewritten clean').to.equal('c {"n":3}\n');
  });

  it('takes over the calls of the former layout (a file per call), so an upgrade loses none', async function () {
    await journal.saveNow('a', JSON.stringify({ n: 1 }));
    writeFileSync(join(dir, 'calls', 'old-1.json'), JSON.stringify({ n: 7 }));
    writeFileSync(join(dir, 'calls', 'a.json'), JSON.stringify({ n: 0 }));
    const calls = await reloaded();
    expect(calls).to.deep.equal([{ id: 'a', state: { n: 1 } }, { id: 'old-1', state: { n: 7 } }]);
    expect(readdirSync(join(dir, 'calls')), 'the former files folded in').to.deep.equal(['journal']);
    expect(await reloaded()).to.deep.equal(calls);
  });

  it('is rewritten with only the live calls once it grows large with dead versions', async function () {
    const pad = 'x'.repeat(1000);
    for (let n = 0; n < 1500; n++) await journal.saveNow('call-1', JSON.stringify({ n, pad }));
    expect(statSync(file()).size).to.be.below(1.1 * 1024 * 1024);
    expect((await stateOf('call-1'))?.n).to.equal(1499);
  });

  it('saveNow rejects when a version could not be written; nothing is appended after a line written in part, and every live call is written again', async function () {
    await journal.saveNow('call-0', '{"n":0}');
    // The disk fills up in the middle of the next write: part of it reaches the file.
    const j = journal as unknown as { append: (text: string) => void };
    const append = j.append.bind(j);
    j.append = (text: string) => {
      append(text.slice(0, 5));
      j.append = append;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    let err: Error | undefined;
    await journal.saveNow('call-1', '{"n":1}').catch((e: Error) => (err = e));
    expect(err?.message).to.match(/ENOSPC/);
    await journal.saveNow('call-2', '{"n":2}');
    expect(readFileSync(file(), 'utf8')).to.equal('call-0 {"n":0}\ncall-1 {"n":1}\ncall-2 {"n":2}\n');
  });

  it('a version awaited while a write is failing is written soon after, not left waiting for the next version some call gives', async function () {
    await journal.saveNow('call-0', '{"n":0}');
    // A rewrite of the whole file is under way and fails (the disk is full for a moment).
    const j = journal as unknown as { writeWhole: () => Promise<void>; rewrite: boolean };
    const writeWhole = j.writeWhole.bind(j);
    let release!: () => void;
    j.writeWhole = async () => {
      await new Promise<void>((r) => (release = r));
      j.writeWhole = writeWhole;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    j.rewrite = true;
    const failed = journal.saveNow('call-1', '{"n":1}').catch((e: Error) => e);
    await new Promise((r) => setImmediate(r));
    // Given while that write is in flight: it waits for it, and must not be stranded by its failure.
    const waiting = journal.saveNow('call-2', '{"n":2}');
    // The end of that turn comes while the failing write is still in flight.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    release();
    expect(((await failed) as Error).message).to.match(/ENOSPC/);
    const settled = await Promise.race([waiting.then(() => 'written'), new Promise((r) => setTimeout(() => r('still waiting'), 3000))]);
    expect(settled).to.equal('written');
    expect(readFileSync(file(), 'utf8')).to.equal('call-0 {"n":0}\ncall-1 {"n":1}\ncall-2 {"n":2}\n');
  });

  it('a write that failed is tried again by itself, and a closed journal tries nothing more', async function () {
    await journal.saveNow('call-0', '{"n":0}');
    const j = journal as unknown as { append: (text: string) => void };
    const append = j.append.bind(j);
    j.append = () => {
      j.append = append;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    journal.save('call-1', '{"n":1}');
    // No call gives another version: the failed one reaches the file all the same.
    const end = Date.now() + 3000;
    while (!readFileSync(file(), 'utf8').includes('call-1') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(file(), 'utf8')).to.equal('call-0 {"n":0}\ncall-1 {"n":1}\n');
    // Closed after a failure: its retry is cancelled, and the file is left as it was.
    j.append = () => {
      throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    };
    journal.save('call-2', '{"n":2}');
    await journal.close();
    const before = readFileSync(file(), 'utf8');
    await new Promise((r) => setTimeout(r, 700));
    expect(readFileSync(file(), 'utf8')).to.equal(before);
  });

  it('refuses a call id unfit for the journal', async function () {
    let err: Error | undefined;
    await journal.saveNow('../x', '{}').catch((e: Error) => (err = e));
    expect(err?.message).to.contain('not fit for a file name');
    await journal.saveNow('a b', '{}').catch((e: Error) => (err = e));
    expect(err?.message).to.contain('"a b"');
  });
});
