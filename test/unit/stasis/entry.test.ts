import { expect } from 'chai';
import { applyDialTemplate, isOwnLeg, parseEntryArgs } from '../../../lib/stasis/entry.js';

describe('call entry arguments', function () {
  it('reads account and dial', function () {
    expect(parseEntryArgs(['account=acme', 'dial=PJSIP/bob'])).to.deep.equal({
      account: 'acme', dial: 'PJSIP/bob', unknown: [],
    });
  });

  it('treats empty values as absent and keeps unknown arguments aside', function () {
    expect(parseEntryArgs(['account=', 'dial=', 'colour=blue', ''])).to.deep.equal({
      account: undefined, dial: undefined, unknown: ['colour=blue'],
    });
  });

  it('refuses an account id with characters outside the allowed set', function () {
    const args = parseEntryArgs(['account=../etc/passwd']);
    expect(args.account).to.equal(undefined);
    expect(args.unknown).to.deep.equal(['account=../etc/passwd']);
  });

  it('applies the dial template to every {exten}', function () {
    expect(applyDialTemplate('PJSIP/{exten}', '2600')).to.equal('PJSIP/2600');
    expect(applyDialTemplate('Local/{exten}@phones/{exten}', '7')).to.equal('Local/7@phones/7');
  });

  it('recognises the legs konami creates itself', function () {
    expect(isOwnLeg(['leg=b', 'call=x'])).to.equal(true);
    expect(isOwnLeg(['account=acme'])).to.equal(false);
  });
});
