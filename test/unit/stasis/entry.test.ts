import { expect } from 'chai';
import { isOwnLeg, parseEntryArgs } from '../../../lib/stasis/entry.js';

describe('call entry arguments', function () {
  it('reads account and dial', function () {
    expect(parseEntryArgs(['account=acme', 'dial=PJSIP/bob'])).to.deep.equal({
      account: 'acme', dial: 'PJSIP/bob', unknown: [], refused: [],
    });
  });

  it('treats empty values as absent and keeps unknown arguments aside', function () {
    expect(parseEntryArgs(['account=', 'dial=', 'colour=blue', ''])).to.deep.equal({
      account: undefined, dial: undefined, unknown: ['colour=blue'], refused: [],
    });
  });

  it('refuses an account id with characters outside the allowed set', function () {
    const args = parseEntryArgs(['account=../etc/passwd']);
    expect(args.account).to.equal(undefined);
    expect(args.unknown).to.deep.equal(['account=../etc/passwd']);
  });

  it('refuses arguments smuggled in a second time: a repeated account= or dial= never overrides the first', function () {
    // As Stasis(konami,account=${HEADER}) receives a header of "acme,account=victim,dial=PJSIP/x@trunk".
    const args = parseEntryArgs(['account=acme', 'account=victim', 'dial=PJSIP/x@trunk']);
    expect(args.refused).to.deep.equal(['account= given more than once']);
    expect(parseEntryArgs(['dial=PJSIP/1', 'dial=PJSIP/2']).refused).to.deep.equal(['dial= given more than once']);
    expect(parseEntryArgs(['account=a', 'account=']).refused).to.have.length(1);
  });

  it('refuses a dial= that is not a dial string', function () {
    expect(parseEntryArgs(['dial=nothing-here']).refused).to.deep.equal(['dial= is not a dial string']);
    expect(parseEntryArgs(['dial=PJSIP/a b']).refused).to.have.length(1);
    expect(parseEntryArgs(['dial=PJSIP/2600@trunk']).refused).to.deep.equal([]);
  });

  it('recognises the legs konami creates itself, and nothing a dialplan argument could pass for one', function () {
    expect(isOwnLeg(['leg=b', 'call=x'])).to.equal(true);
    expect(isOwnLeg(['leg=target', 'call=x'])).to.equal(true);
    expect(isOwnLeg(['account=acme'])).to.equal(false);
    expect(isOwnLeg(['account=acme', 'leg=b', 'call=x'])).to.equal(false);
    expect(isOwnLeg(['leg=b'])).to.equal(false);
  });
});
