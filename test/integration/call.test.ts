import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { Cause } from '../../lib/stasis/causes.js';
import { konamiBridges, eventually } from '../harness/asterisk.js';
import { startTestKonami } from '../harness/konami.js';
import { Phones, type Phone } from '../harness/phones.js';
import { sandboxEnv, type SandboxEnv } from '../harness/sandbox.js';

/** Konami's own channel for a phone konami dialled (the other half of its Local pair). */
const konamiSide = (callee: Phone) => callee.id.replace(/;2$/, '');

describe('Calls through konami on the real Asterisk', function () {
  let env: SandboxEnv;
  let phones: Phones;
  let konami: Konami;

  before(async function () {
    env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    konami = await startTestKonami(env);
  });

  after(async function () {
    await konami?.stop(1000);
    await phones?.stop();
  });

  afterEach(async function () {
    await phones.checkNothingLeftAndReset();
  });

  async function connect(number: string): Promise<{ alice: Phone; bob: Phone }> {
    const alice = await phones.call(number, { account: 'acme' });
    const bob = await phones.incoming(number);
    await bob.ring();
    await alice.waitState('Ringing');
    await bob.answer();
    await alice.waitState('Up');
    return { alice, bob };
  }

  it('Alice calls Bob and Bob answers: exactly one konami bridge holds exactly the two of them', async function () {
    const alice = await phones.call('2001', { account: 'acme', from: { number: '1001', name: 'Alice' } });
    const bob = await phones.incoming('2001');
    const arrival = bob.events.find((e) => e.type === 'StasisStart');
    expect(arrival && 'channel' in arrival ? arrival.channel.caller : undefined, "Bob's phone shows Alice's caller id")
      .to.deep.equal({ name: 'Alice', number: '1001' });
    await bob.ring();
    await alice.waitState('Ringing');
    expect(await konamiBridges(phones.ari), 'no bridge before Bob answers').to.have.length(0);
    await bob.answer();
    await alice.waitState('Up');
    const bridges = await eventually(
      () => konamiBridges(phones.ari),
      (b) => b.length === 1 && b[0]!.channels.length === 2,
      'one konami bridge with two channels',
    );
    expect(bridges[0]!.channels).to.have.members([alice.peerId, konamiSide(bob)]);
    expect(bridges[0]!.technology).to.equal('simple_bridge');
    expect(bridges[0]!.bridge_type).to.equal('mixing');
    expect((await phones.ari.getChannel(konamiSide(bob))).state).to.equal('Up');
    await alice.hangup();
    await bob.waitHangup();
  });

  it('Alice hangs up first: Bob is hung up and the bridge is gone', async function () {
    const { alice, bob } = await connect('2002');
    await alice.hangup();
    expect(await bob.waitHangup()).to.equal(Cause.NORMAL_CLEARING);
    await eventually(() => konamiBridges(phones.ari), (b) => b.length === 0, 'the bridge to be destroyed');
  });

  it('Bob hangs up first: Alice is hung up and the bridge is gone', async function () {
    const { alice, bob } = await connect('2003');
    await bob.hangup();
    expect(await alice.waitHangup()).to.equal(Cause.NORMAL_CLEARING);
    await eventually(() => konamiBridges(phones.ari), (b) => b.length === 0, 'the bridge to be destroyed');
  });

  it('Alice hangs up while Bob still rings: Bob stops ringing', async function () {
    const alice = await phones.call('2004', { account: 'acme' });
    const bob = await phones.incoming('2004');
    await bob.ring();
    await alice.waitState('Ringing');
    await alice.hangup();
    await bob.waitHangup();
  });

  it('Bob is busy: Alice is hung up with cause 17 (user busy)', async function () {
    const alice = await phones.call('2005', { account: 'acme' });
    const bob = await phones.incoming('2005');
    await bob.ring();
    await bob.hangup(Cause.USER_BUSY);
    expect(await alice.waitHangup()).to.equal(Cause.USER_BUSY);
  });

  it('Bob rejects the call: Alice is hung up with cause 21 (call rejected)', async function () {
    const alice = await phones.call('2006', { account: 'acme' });
    const bob = await phones.incoming('2006');
    await bob.ring();
    await bob.hangup(Cause.CALL_REJECTED);
    expect(await alice.waitHangup()).to.equal(Cause.CALL_REJECTED);
  });

  it("Bob's endpoint does not exist: Alice is hung up with cause 1 (unallocated number)", async function () {
    const alice = await phones.call('2007', { account: 'acme', dial: 'PJSIP/nobody-here' });
    expect(await alice.waitHangup()).to.equal(Cause.UNALLOCATED);
  });

  it("Bob's extension does not exist: Alice is hung up with cause 3 (no route to destination)", async function () {
    const alice = await phones.call('2008', { account: 'acme', dial: 'Local/2008@no-such-context/n' });
    expect(await alice.waitHangup()).to.equal(Cause.NO_ROUTE_DESTINATION);
  });

  it('a plain-dialplan busy target: Alice is hung up with cause 17', async function () {
    const alice = await phones.call('2009', { account: 'acme', dial: 'Local/busy@fixed/n' });
    expect(await alice.waitHangup()).to.equal(Cause.USER_BUSY);
  });

  it('a second dial= smuggled in through the account argument: the call is refused (21), nothing is dialled', async function () {
    // Stasis(konami,account=${KONAMI_ACCOUNT},dial=...) with a value that carries its own commas.
    const alice = await phones.call('2012', { account: 'acme,dial=Local/2099@phones/n' });
    expect(await alice.waitHangup()).to.equal(Cause.CALL_REJECTED);
    expect(phones.pending('2099'), 'the smuggled number never rang').to.equal(0);
  });

  it('a dialled extension that is not a number never reaches the dial template: refused (28)', async function () {
    const alice = await phones.call('2013x');
    expect(await alice.waitHangup()).to.equal(Cause.INVALID_NUMBER_FORMAT);
  });

  it('a call without an account is still connected (no feature codes)', async function () {
    const alice = await phones.call('2010');
    const bob = await phones.incoming('2010');
    await bob.answer();
    await alice.waitState('Up');
    await eventually(() => konamiBridges(phones.ari), (b) => b.length === 1 && b[0]!.channels.length === 2, 'a bridge of two');
    await bob.hangup();
    await alice.waitHangup();
  });

  describe('with a 2 second ring timeout', function () {
    before(async function () {
      await konami.stop(1000);
      konami = await startTestKonami(env, { RING_TIMEOUT: '2' });
    });

    after(async function () {
      await konami.stop(1000);
      konami = await startTestKonami(env);
    });

    it('Bob does not answer in time: his phone stops ringing and Alice is hung up with cause 19 (no answer)', async function () {
      const alice = await phones.call('2011', { account: 'acme' });
      const bob = await phones.incoming('2011');
      await bob.ring();
      const started = Date.now();
      expect(await alice.waitHangup(6000)).to.equal(Cause.NO_ANSWER);
      expect(Date.now() - started).to.be.within(1500, 4000);
      await bob.waitHangup();
    });
  });
});
