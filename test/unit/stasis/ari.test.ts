import { expect } from 'chai';
import { AriError, statusFromMessage, tolerateGone } from '../../../lib/stasis/ari.js';

describe('ARI errors', function () {
  it('recovers the HTTP status from ARI messages', function () {
    expect(statusFromMessage('Channel not found')).to.equal(404);
    expect(statusFromMessage('Bridge not found')).to.equal(404);
    expect(statusFromMessage('Channel not in Stasis application')).to.equal(409);
    expect(statusFromMessage('Channel not in this bridge')).to.equal(422);
    expect(statusFromMessage('Something odd')).to.equal(undefined);
  });

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
