import { expect } from 'chai';
import { AriError, tolerateGone } from '../../../lib/stasis/ari.js';

describe('ARI errors', function () {
  it('tolerates a target that is gone, and only that', async function () {
    expect(await tolerateGone(Promise.resolve())).to.equal(true);
    expect(await tolerateGone(Promise.reject(new AriError('hangup', 'Channel not found', 404)))).to.equal(false);
    let thrown: unknown;
    try {
      await tolerateGone(Promise.reject(new AriError('dial', 'Internal error', 500)));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(AriError);
    expect((thrown as AriError).message).to.equal('dial: Internal error');
  });
});
