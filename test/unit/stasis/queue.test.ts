import { expect } from 'chai';
import { SerialQueue } from '../../../lib/stasis/queue.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('SerialQueue', function () {
  it('runs tasks one at a time, in push order, even when they await', async function () {
    const seen: string[] = [];
    const q = new SerialQueue(() => undefined);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    void q.push(async () => {
      seen.push('first:start');
      await gate;
      seen.push('first:end');
    });
    void q.push(() => void seen.push('second'));
    await tick();
    expect(seen).to.deep.equal(['first:start']);
    expect(q.length).to.equal(2);
    release();
    await q.drained();
    expect(seen).to.deep.equal(['first:start', 'first:end', 'second']);
    expect(q.length).to.equal(0);
  });

  it('reports a failing task and goes on with the next', async function () {
    const errors: unknown[] = [];
    const q = new SerialQueue((err) => errors.push(err));
    let ran = false;
    void q.push(() => {
      throw new Error('boom');
    });
    await q.push(() => void (ran = true));
    expect(ran).to.equal(true);
    expect(errors).to.have.length(1);
    expect((errors[0] as Error).message).to.equal('boom');
  });
});
