import { expect } from 'chai';
import { matcherFor } from './helpers.js';

describe('matching a collected code', function () {
  const m = matcherFor({
    numbers: { 22: { module: 'resume' }, 213: { module: 'probe', data: { n: 'number' } } },
    patterns: {
      '21(\\d+)': { module: 'transfer' },
      '2(\\d)(\\d)': { module: 'probe', data: { n: 'pattern' } },
      '7': { module: 'probe' },
    },
  });

  it('numbers win over patterns', function () {
    const { match } = m.evaluate('213');
    expect(match).to.deep.include({ module: 'probe', source: { table: 'numbers', key: '213' } });
    expect(match!.captures).to.deep.equal([]);
  });

  it('patterns are tried in declared order, and give their captures', function () {
    expect(m.evaluate('2123').match).to.deep.include({ module: 'transfer', captures: ['23'] });
    expect(m.evaluate('245').match).to.deep.include({ module: 'probe', captures: ['4', '5'], data: { n: 'pattern' } });
  });

  it('reports whether a longer code could still match', function () {
    expect(m.evaluate('22').canExtend, '22 could still become 2(\\d)(\\d)').to.equal(true);
    expect(m.evaluate('245').canExtend).to.equal(false);
    expect(m.evaluate('21')).to.deep.include({ match: undefined, canExtend: true });
    expect(m.evaluate('2600').canExtend).to.equal(false);
    expect(m.evaluate('7')).to.deep.include({ canExtend: false });
    expect(m.evaluate('7').match!.module).to.equal('probe');
  });

  it('listens to the legs listen_on names', function () {
    expect(matcherFor({ listen_on: 'a' }).listensTo('b')).to.equal(false);
    expect(matcherFor({ listen_on: 'b' }).listensTo('b')).to.equal(true);
    expect(matcherFor({}).listensTo('a')).to.equal(true);
  });
});
