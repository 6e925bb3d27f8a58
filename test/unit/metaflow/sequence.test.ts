import { expect } from 'chai';
import { KeyWatch } from '../../../lib/metaflow/sequence.js';

describe('a watched key sequence (the takeback)', function () {
  let released: string[];
  let timers: Array<{ fn: () => void; ms: number; cleared: boolean }>;
  const watch = (keys: string) => new KeyWatch(keys, 2000, (k) => released.push(k), {
    set: (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clear: (t) => void ((t as { cleared: boolean }).cleared = true),
  });
  const fire = () => {
    for (const t of timers.filter((x) => !x.cleared)) {
      t.cleared = true;
      t.fn();
    }
  };

  beforeEach(function () {
    released = [];
    timers = [];
  });

  it('completes on its last key, holding the keys before it and giving nothing back', function () {
    const w = watch('*1');
    expect(w.press('*')).to.equal(false);
    expect(w.press('1')).to.equal(true);
    expect(released).to.deep.equal([]);
  });

  it('gives back, in order, keys that turn out not to be it, keeping an end that may still begin it', function () {
    const w = watch('#9');
    w.press('#');
    w.press('#');
    expect(released, 'the first # cannot begin it any more; the second still may').to.deep.equal(['#']);
    w.press('5');
    expect(released).to.deep.equal(['#', '#5']);
    expect(w.press('#')).to.equal(false);
    expect(w.press('9')).to.equal(true);
  });

  it('gives held keys back after the digit timeout, and takes lowercase keys as uppercase', function () {
    const w = watch('*a');
    w.press('*');
    expect(timers.at(-1)!.ms).to.equal(2000);
    fire();
    expect(released).to.deep.equal(['*']);
    w.press('*');
    expect(w.press('a')).to.equal(true);
    const upper = watch('*A');
    upper.press('*');
    expect(upper.press('a')).to.equal(true);
  });

  it('drops held keys and clears its timer when it ends', function () {
    const w = watch('*1');
    w.press('*');
    w.dispose();
    expect(timers.every((t) => t.cleared)).to.equal(true);
    fire();
    expect(released).to.deep.equal([]);
  });
});
