import { expect } from 'chai';
import sinon from 'sinon';
import { DigitCollector } from '../../../lib/metaflow/collector.js';
import type { Matcher } from '../../../lib/metaflow/matcher.js';
import type { Invocation } from '../../../lib/metaflow/modules.js';
import type { LegRole } from '../../../lib/metaflow/types.js';
import { matcherFor } from './helpers.js';

const KAZOO_LIKE = {
  numbers: { 22: { module: 'resume' } },
  patterns: { '21(\\d+)': { module: 'transfer' }, '9(\\d)(\\d)?': { module: 'probe', data: { tag: 'nine' } } },
};

describe('collecting feature codes from live digits (fake timers)', function () {
  let clock: sinon.SinonFakeTimers;
  let passed: Array<[LegRole, string]>;
  let fired: Invocation[];
  let unmatched: Array<[LegRole, string, string]>;
  let matcher: Matcher | undefined;
  let collector: DigitCollector;

  /** What the other party of each leg has heard so far. */
  const heardBy = (from: LegRole) => passed.filter(([l]) => l === from).map(([, d]) => d).join('');
  const press = (leg: LegRole, digits: string, gapMs = 200) => {
    for (const d of digits) {
      collector.press(leg, d);
      clock.tick(gapMs);
    }
  };

  function use(raw: Record<string, unknown> | undefined): void {
    matcher = raw ? matcherFor(raw) : undefined;
  }

  beforeEach(function () {
    clock = sinon.useFakeTimers();
    passed = [];
    fired = [];
    unmatched = [];
    use(KAZOO_LIKE);
    collector = new DigitCollector(
      () => matcher,
      {
        pass: (from, digits) => passed.push([from, digits]),
        fire: (inv) => fired.push(inv),
        unmatched: (from, collected, why) => unmatched.push([from, collected, why]),
      },
      { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h as NodeJS.Timeout) },
    );
  });

  afterEach(function () {
    collector.dispose();
    clock.restore();
  });

  it('passes digits that cannot start a code at once, one by one', function () {
    collector.press('a', '1');
    expect(heardBy('a')).to.equal('1');
    press('a', '23#');
    expect(heardBy('a')).to.equal('123#');
    expect(fired).to.have.length(0);
  });

  it('fires a code on its last digit when no longer code could match, and the other party hears none of it', function () {
    collector.press('a', '*');
    collector.press('a', '2');
    expect(fired).to.have.length(0);
    collector.press('a', '2');
    expect(fired).to.have.length(1);
    expect(fired[0]).to.deep.include({ module: 'resume', leg: 'a', collected: '22', captures: [] });
    expect(heardBy('a')).to.equal('');
    expect(collector.isArmed('a')).to.equal(false);
  });

  it('the binding digit arms and is not part of the buffer; patterns give their captures and data', function () {
    press('b', '*95');
    expect(fired, 'could still become 9(\\d)(\\d)').to.have.length(0);
    collector.press('b', '7');
    expect(fired[0]).to.deep.include({ module: 'probe', leg: 'b', collected: '957', captures: ['5', '7'], data: { tag: 'nine' } });
  });

  it('fires on the digit timeout when a longer code was still possible', function () {
    press('a', '*212600', 500);
    expect(fired).to.have.length(0);
    clock.tick(1499);
    expect(fired).to.have.length(0);
    clock.tick(1);
    expect(fired[0]).to.deep.include({ module: 'transfer', collected: '212600', captures: ['2600'] });
    expect(heardBy('a')).to.equal('');
  });

  it('each digit restarts the timer', function () {
    for (const d of '*21260') {
      collector.press('a', d);
      clock.tick(1900);
    }
    expect(fired).to.have.length(0);
    clock.tick(100);
    expect(fired).to.have.length(1);
  });

  it('# ends the code at once and is not passed on', function () {
    press('a', '*2126', 10);
    collector.press('a', '#');
    expect(fired[0]).to.deep.include({ module: 'transfer', captures: ['26'] });
    expect(heardBy('a')).to.equal('');
    clock.tick(5000);
    expect(fired).to.have.length(1);
  });

  it('an unmatched code is replayed in order after the timeout, binding digit included', function () {
    press('a', '*9', 10);
    expect(heardBy('a')).to.equal('');
    clock.tick(2000);
    expect(heardBy('a')).to.equal('*9');
    expect(fired).to.have.length(0);
    expect(unmatched).to.deep.equal([['a', '9', 'timeout']]);
  });

  it('an unmatched code ended by # is replayed with the #', function () {
    press('a', '*21#', 10);
    expect(heardBy('a')).to.equal('*21#');
    expect(unmatched).to.deep.equal([['a', '21', 'terminated']]);
  });

  it('a digit that no code can continue replays the held digits at once, followed by that digit', function () {
    press('a', '*2', 10);
    collector.press('a', '5');
    expect(heardBy('a')).to.equal('*25');
    expect(collector.isArmed('a')).to.equal(false);
    expect(unmatched).to.deep.equal([['a', '2', 'impossible']]);
  });

  it('a buffer that matched fires when the next digit cannot continue it, and that digit passes', function () {
    use({ numbers: { 4: { module: 'probe' }, 45: { module: 'resume' } } });
    press('a', '*4', 10);
    collector.press('a', '1');
    expect(fired.map((f) => f.collected)).to.deep.equal(['4']);
    expect(heardBy('a')).to.equal('1');
  });

  it('pressing the binding digit again starts the code over; the abandoned digits are replayed', function () {
    press('a', '*2', 10);
    press('a', '*22', 10);
    expect(heardBy('a')).to.equal('*2');
    expect(fired).to.have.length(1);
    expect(fired[0]!.module).to.equal('resume');
  });

  it('keeps a buffer per party: interleaved digits from both parties do not mix', function () {
    collector.press('a', '*');
    collector.press('b', '*');
    collector.press('a', '2');
    collector.press('b', '9');
    collector.press('b', '1');
    collector.press('a', '2');
    expect(fired.map((f) => [f.leg, f.module])).to.deep.equal([['a', 'resume']]);
    collector.press('b', '2');
    expect(fired.map((f) => [f.leg, f.module, f.collected])).to.deep.equal([['a', 'resume', '22'], ['b', 'probe', '912']]);
    expect(heardBy('a') + heardBy('b')).to.equal('');
  });

  it('one party\'s digits pass while the other is in the middle of a code', function () {
    press('a', '*21', 10);
    press('b', '555', 10);
    expect(heardBy('b')).to.equal('555');
    expect(collector.isArmed('a')).to.equal(true);
  });

  it('bounds the buffer: at 32 digits the code is decided', function () {
    press('a', '*21' + '1'.repeat(30), 10);
    expect(fired).to.have.length(1);
    expect(fired[0]!.collected).to.have.length(32);
    collector.press('a', '5');
    expect(heardBy('a')).to.equal('5');
  });

  it('an overlong code that never matches is replayed whole when the bound is reached', function () {
    use({ patterns: { '1+5': { module: 'probe' } } });
    press('a', '*' + '1'.repeat(32), 10);
    expect(fired).to.have.length(0);
    expect(heardBy('a')).to.equal('*' + '1'.repeat(32));
  });

  it('a code pressed by a leg the config does not listen on passes through untouched', function () {
    use({ ...KAZOO_LIKE, listen_on: 'a' });
    press('b', '*22', 10);
    expect(fired).to.have.length(0);
    expect(heardBy('b')).to.equal('*22');
    press('a', '*22', 10);
    expect(fired.map((f) => f.leg)).to.deep.equal(['a']);
  });

  it('an account without codes never holds a digit', function () {
    use(undefined);
    press('a', '*22', 10);
    use({});
    press('a', '*22', 10);
    expect(heardBy('a')).to.equal('*22*22');
  });

  it('metaflows removed mid-code: the held digits are given back', function () {
    press('a', '*2', 10);
    use(undefined);
    collector.press('a', '2');
    expect(heardBy('a')).to.equal('*22');
  });

  it('accepts lowercase A-D as the DTMF keys', function () {
    use({ numbers: { A1: { module: 'probe' } } });
    press('a', '*a1', 10);
    expect(fired[0]!.collected).to.equal('A1');
  });

  it('dispose clears the timers: nothing fires or replays after the call is over', function () {
    press('a', '*9', 10);
    collector.dispose();
    clock.tick(10_000);
    expect(passed).to.have.length(0);
    expect(fired).to.have.length(0);
  });
});
