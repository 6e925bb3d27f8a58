import { expect } from 'chai';
import { DtmfRegex, RegexSyntaxError } from '../../../lib/metaflow/dtmf-regex.js';

const run = (re: string, input: string) => new DtmfRegex(re).run(input);

describe('the DTMF regular expression engine', function () {
  it('matches the whole input only, with captures', function () {
    expect(run('21(\\d+)', '212600')).to.deep.equal({ matched: true, captures: ['2600'], canExtend: true });
    expect(run('21(\\d+)', '2126x')).to.include({ matched: false, canExtend: false });
    expect(run('1', '12').matched).to.equal(false);
    expect(run('^22$', '22').matched).to.equal(true);
  });

  it('tells whether a longer input could still match', function () {
    expect(run('21(\\d+)', '2')).to.include({ matched: false, canExtend: true });
    expect(run('21(\\d+)', '21')).to.include({ matched: false, canExtend: true });
    expect(run('22', '22')).to.include({ matched: true, canExtend: false });
    expect(run('3\\d{2}', '312')).to.include({ matched: true, canExtend: false });
    expect(run('3\\d{2}', '31')).to.include({ matched: false, canExtend: true });
    expect(run('9', '5')).to.include({ matched: false, canExtend: false });
  });

  it('knows the DTMF alphabet: \\* for star, # and A-D as keys, classes and alternation', function () {
    expect(run('\\*9', '*9').matched).to.equal(true);
    expect(run('[A-D]#', 'B#').matched).to.equal(true);
    expect(run('[^0-4]', '7').matched).to.equal(true);
    expect(run('[^0-4]', '3').matched).to.equal(false);
    expect(run('(1|22)(?:3)?', '223')).to.deep.equal({ matched: true, captures: ['22'], canExtend: false });
    expect(run('(?<target>\\d{3,4})', '260')).to.deep.equal({ matched: true, captures: ['260'], canExtend: true });
    expect(run('7(8)?9', '79')).to.deep.equal({ matched: true, captures: [undefined], canExtend: false });
  });

  it('prefers the greedy split for captures, like a backtracking engine', function () {
    expect(run('(\\d*)(\\d)', '123').captures).to.deep.equal(['12', '3']);
    expect(run('(\\d*?)(\\d+)', '123').captures).to.deep.equal(['', '123']);
  });

  it('refuses what it cannot run in linear time or at all, saying where', function () {
    for (const bad of ['(a', '21(\\d+', '\\1', '(?=1)', '(?!1)', 'x{2,1}', '1{99}', '*1', '[9-0]', 'é']) {
      expect(() => new DtmfRegex(bad), bad).to.throw(RegexSyntaxError, /at position \d+/);
    }
    expect(() => new DtmfRegex('1'.repeat(300))).to.throw(RegexSyntaxError);
  });

  it('runs a pattern that is catastrophic for backtracking engines in linear time', function () {
    const re = new DtmfRegex('(\\d*)*\\d*(\\d*)*#1');
    const input = '1'.repeat(32);
    const started = process.hrtime.bigint();
    const r = re.run(input);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(r.matched).to.equal(false);
    // Not a timing assertion of the engine's speed: a backtracking engine takes minutes here.
    expect(ms).to.be.below(1000);
  });

  it('advances one digit at a time: stepping gives what a whole run gives, captures only on demand', function () {
    const re = new DtmfRegex('21(\\d+)(#?)');
    let state = re.initial();
    const seen: Array<[boolean, boolean]> = [];
    for (const d of '212600') {
      state = re.step(state, d);
      seen.push([re.accepts(state), re.canExtend(state)]);
    }
    expect(seen).to.deep.equal([[false, true], [false, true], [true, true], [true, true], [true, true], [true, true]]);
    expect(re.captures('212600')).to.deep.equal(['2600', '']);
    expect(re.step(state, 'x')).to.equal(null);
    expect(re.captures('31')).to.equal(undefined);
  });

  it('keeps capture histories shared: a group repeated gives its last iteration, as PCRE (Kazoo\'s engine) does', function () {
    expect(run('(?:(\\d)(\\*)?){1,8}', '12*3').captures).to.deep.equal(['3', '*']);
    expect(run('((\\d)\\*)+', '1*2*').captures).to.deep.equal(['2*', '2']);
  });
});
