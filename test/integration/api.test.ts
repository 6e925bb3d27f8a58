// The REST API driving transfers on the real Asterisk: an integrator's
// program (or a mobile app) transfers Alice's call; Alice completes it by
// hanging up, or cancels it with *22.
import { expect } from 'chai';
import type { Konami } from '../../lib/main.js';
import { validateMetaflows } from '../../lib/metaflow/config.js';
import type { ChannelView } from '../../lib/stasis/control.js';
import { eventually, logMark, mohClassesStarted, mohPlaysIn } from '../harness/asterisk.js';
import { expectBridges, side } from '../harness/bridges.js';
import { startTestKonami } from '../harness/konami.js';
import { Phones, type Phone } from '../harness/phones.js';
import { sandboxEnv } from '../harness/sandbox.js';
import { EventStream } from '../harness/events.js';

describe('The REST API on the real Asterisk', function () {
  this.timeout(30_000);
  let phones: Phones;
  let konami: Konami;
  let account: string;
  let token: string;
  /** An account with no metaflows at all, as a Kazoo client knows it. */
  let bare: string;
  let bareToken: string;
  let n = 0;

  before(async function () {
    const env = sandboxEnv();
    phones = await Phones.connect(env);
    await phones.reset();
    konami = await startTestKonami(env);
    const created = await konami.store.create('API');
    account = created.account.id;
    await konami.store.setMetaflows(account, validateMetaflows({
      numbers: { 22: { module: 'resume' } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 10 } } },
    }, konami.modules));
    const auth = await api('PUT', '/v1/api_auth', { data: { api_key: created.apiKey } });
    expect(auth.status).to.equal(201);
    token = auth.json['auth_token'] as string;
    const plain = await konami.store.create('no codes');
    bare = plain.account.id;
    bareToken = (await api('PUT', '/v2/api_auth', { data: { api_key: plain.apiKey } })).json['auth_token'] as string;
  });

  after(async function () {
    await konami?.stop(1000);
    await phones?.stop();
  });

  afterEach(async function () {
    await phones.checkNothingLeftAndReset();
  });

  async function api(method: string, path: string, body?: unknown, as = token): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`http://127.0.0.1:${konami.http.port}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(as ? { 'x-auth-token': as } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  const channels = async () => (await api('GET', `/v1/accounts/${account}/channels`)).json['data'] as ChannelView[];
  const channelOf = async (id: string) => (await channels()).find((c) => c.id === id);
  const konamiBridgeOf = async (callId: string) => (await phones.ari.listBridges()).find((b) => b.name === `konami/${callId}`)?.id;

  async function connect(on = account): Promise<{ alice: Phone; bob: Phone; callId: string }> {
    const to = `${5500 + ++n * 10}`;
    const alice = await phones.call(to, { account: on, from: { number: '1001', name: 'Alice' } });
    const bob = await phones.incoming(to);
    await bob.answer();
    await expectBridges(phones.ari, alice.peerId!, { main: [alice.peerId!, side(bob)] }, 'Alice and Bob bridged');
    return { alice, bob, callId: alice.peerId! };
  }

  /** A Kazoo client's request, as its documentation shows it: /v2, the account with no codes. */
  const kazoo = (callId: string, data: Record<string, unknown>) => api('POST', `/v2/accounts/${bare}/channels/${callId}`, { data }, bareToken);

  /** Whether Asterisk still has a playback (ARI answers 404 once it stopped). */
  async function playbackExists(id: string): Promise<boolean> {
    const env = sandboxEnv();
    const res = await fetch(`${env.url}/ari/playbacks/${id}`, {
      headers: { authorization: `Basic ${Buffer.from(`${env.username}:${env.password}`).toString('base64')}` },
    });
    return res.status === 200;
  }

  async function transfer(callId: string): Promise<{ mary: Phone; transferId: string }> {
    const target = `${2800 + n * 10}`;
    const r = await api('POST', `/v1/accounts/${account}/channels/${callId}`, { data: { action: 'transfer', target } });
    expect(r.status, JSON.stringify(r.json)).to.equal(202);
    const t = r.json['data'] as { id: string; state: string; target: string };
    expect(t).to.include({ state: 'calling', target });
    const mary = await phones.incoming(target);
    await mary.ring();
    return { mary, transferId: t.id };
  }

  it('GET channels lists both parties of a call with caller and callee ids and the other leg', async function () {
    const { alice, bob, callId } = await connect();
    const list = await channels();
    const a = list.find((c) => c.id === callId)!;
    const b = list.find((c) => c.id === side(bob))!;
    expect(a).to.deep.include({ direction: 'inbound', other_leg: side(bob), answered: true, transfer: null });
    expect(a.caller_id).to.deep.equal({ name: 'Alice', number: '1001' });
    expect(b).to.deep.include({ direction: 'outbound', other_leg: callId, call_id: callId });
    await alice.hangup();
    await bob.waitHangup();
    await eventually(channels, (l) => !l.some((c) => c.call_id === callId), 'the call to leave the list');
  });

  it('API transfer, Mary answers, Alice hangs up: Bob and Mary are connected; GET shows the state change', async function () {
    const { alice, bob, callId } = await connect();
    const { mary, transferId } = await transfer(callId);
    expect((await channelOf(callId))?.transfer).to.deep.include({ id: transferId, state: 'calling', target_answered: false });
    await mary.answer();
    await eventually(async () => (await channelOf(callId))?.transfer?.state, (s) => s === 'consulting', 'the transfer to show consulting');
    await expectBridges(phones.ari, callId, { main: [side(bob)], consult: [callId, side(mary)] }, 'Alice consults Mary, Bob holds');
    await alice.hangup();
    await expectBridges(phones.ari, callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    const bobView = await eventually(() => channelOf(side(bob)), (c) => c?.last_transfer?.outcome === 'completed', 'the transfer to show completed');
    expect(bobView!.transfer).to.equal(null);
    expect(bobView!.other_leg).to.equal(side(mary));
    await mary.hangup();
    await bob.waitHangup();
  });

  it('API transfer, Alice hangs up while Mary rings (partial): Mary answers and is connected with Bob', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transfer(callId);
    await alice.hangup();
    await eventually(async () => (await channelOf(side(bob)))?.transfer?.state, (s) => s === 'partial', 'the transfer to show partial');
    await mary.answer();
    await expectBridges(phones.ari, callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await bob.hangup();
    await mary.waitHangup();
  });

  it('API transfer cancelled by Alice pressing *22: Mary is hung up, Alice is back with Bob', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transfer(callId);
    await alice.press('*22');
    await mary.waitHangup(3000);
    await expectBridges(phones.ari, callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    expect((await channelOf(callId))?.last_transfer?.outcome).to.equal('cancelled');
    await alice.hangup();
    await bob.waitHangup();
  });

  it('a Kazoo client transfers on an account with no transfer code (/v2, moh jazz); Alice presses the takeback *1: Mary is hung up, Alice is back with Bob', async function () {
    const { alice, bob, callId } = await connect(bare);
    const mark = logMark();
    const target = `${2800 + n * 10}`;
    const r = await kazoo(callId, { action: 'transfer', target, takeback_dtmf: '*1', moh: 'jazz' });
    expect(r.status, JSON.stringify(r.json)).to.equal(202);
    const mary = await phones.incoming(target);
    await mary.ring();
    await expectBridges(phones.ari, callId, { main: [side(bob)], consult: [callId] }, 'Bob holds, Alice waits for Mary');
    const main = (await konamiBridgeOf(callId))!;
    await eventually(async () => mohPlaysIn(main), (v) => v, "music on hold in Bob's bridge");
    expect(mohClassesStarted(mark), 'Asterisk plays the class the request named').to.include('jazz');
    await alice.press('*1');
    await mary.waitHangup(3000);
    await expectBridges(phones.ari, callId, { main: [callId, side(bob)] }, 'Alice back with Bob after the takeback');
    expect(mohPlaysIn(main), "Bob's music stopped").to.equal(false);
    expect(bob.heard, 'Bob heard none of the keys').to.equal('');
    await alice.hangup();
    await bob.waitHangup();
  });

  it("a Kazoo client's blind transfer: Alice is hung up at once, Mary's phone shows Bob, Mary answers and talks with Bob", async function () {
    const { alice, bob, callId } = await connect(bare);
    const target = `${2800 + n * 10}`;
    const r = await kazoo(callId, { action: 'transfer', target, 'transfer-type': 'blind' });
    expect(r.status, JSON.stringify(r.json)).to.equal(202);
    await alice.waitHangup(3000);
    const mary = await phones.incoming(target);
    const shown = mary.events.find((e) => e.type === 'StasisStart');
    expect(shown && 'channel' in shown ? shown.channel.caller.number : undefined, "Mary's phone shows Bob").to.equal(bob.number);
    await mary.ring();
    await expectBridges(phones.ari, callId, { main: [side(bob)] }, 'Bob waits alone, with no consultation');
    expect(mohPlaysIn((await konamiBridgeOf(callId))!), 'Bob hears ringback, not music').to.equal(false);
    await mary.answer();
    await expectBridges(phones.ari, callId, { main: [side(bob), side(mary)] }, 'Bob and Mary connected');
    await mary.hangup();
    await bob.waitHangup();
  });

  it("break stops the ringback konami plays Alice (Asterisk drops the playback); hangup hangs up Bob's channel", async function () {
    const { alice, bob, callId } = await connect(bare);
    const target = `${2800 + n * 10}`;
    expect((await kazoo(callId, { action: 'transfer', target })).status).to.equal(202);
    const mary = await phones.incoming(target);
    await mary.ring();
    const kept = konami.app.activeCalls.get(callId)!.record().transfer!;
    const ringing = kept.ringing.find(([channel]) => channel === callId)?.[1];
    expect(ringing, 'konami plays Alice ringback').to.be.a('string');
    await eventually(() => playbackExists(ringing!), (v) => v, 'Asterisk to play the ringback');
    expect((await kazoo(callId, { action: 'break' })).status).to.equal(202);
    await eventually(() => playbackExists(ringing!), (v) => !v, 'Asterisk to stop the ringback');
    expect(mary.gone, 'the transfer goes on').to.equal(false);
    expect((await kazoo(side(bob), { action: 'hangup' })).status).to.equal(202);
    await bob.waitHangup(3000);
    // Bob gone while Mary rings: Alice goes on waiting for her, as after any hang-up of Bob's.
    expect(alice.gone).to.equal(false);
    await alice.hangup();
    await mary.waitHangup(3000);
  });

  it("a user's token lists and transfers only the user's own call; another call of the account is not found", async function () {
    const made = await api('PUT', `/v2/accounts/${account}/users`, { data: { username: 'alice', numbers: ['1001'], password: 'alice password' } });
    expect(made.status, JSON.stringify(made.json)).to.equal(201);
    const userId = (made.json['data'] as { id: string }).id;
    const auth = await api('PUT', '/v2/user_auth', { data: { account_id: account, username: 'alice', password: 'alice password' } }, '');
    expect(auth.status).to.equal(201);
    const userToken = auth.json['auth_token'] as string;
    const mine = await connect();
    const carol = await phones.call('5998', { account, from: { number: '1002', name: 'Carol' } });
    const dave = await phones.incoming('5998');
    await dave.answer();
    await expectBridges(phones.ari, carol.peerId!, { main: [carol.peerId!, side(dave)], [`konami/${mine.callId}`]: [mine.callId, side(mine.bob)] }, 'both calls up');
    const listed = (await api('GET', `/v1/accounts/${account}/users/${userId}/channels`, undefined, userToken)).json['data'] as ChannelView[];
    expect(listed.map((c) => c.call_id), "only Alice's call").to.deep.equal([mine.callId, mine.callId]);
    expect(listed.find((c) => c.id === mine.callId)?.owner_id, 'her party carries her user id').to.equal(userId);
    const foreign = await api('POST', `/v1/accounts/${account}/channels/${carol.peerId}`, { data: { action: 'hangup' } }, userToken);
    expect(foreign.status, "Carol's call is not Alice's").to.equal(404);
    expect(dave.gone).to.equal(false);
    const target = `${2800 + n * 10}`;
    const t = await api('POST', `/v1/accounts/${account}/users/${userId}/channels/${mine.callId}`, { data: { action: 'transfer', target } }, userToken);
    expect(t.status, JSON.stringify(t.json)).to.equal(202);
    const mary = await phones.incoming(target);
    await mary.ring();
    await mine.alice.press('*1');
    await mary.waitHangup(3000);
    expect((await api('POST', `/v1/accounts/${account}/channels/${mine.callId}`, { data: { action: 'hangup' } }, userToken)).status).to.equal(202);
    await mine.alice.waitHangup(3000);
    await mine.bob.waitHangup(3000);
    await carol.hangup();
    await dave.waitHangup();
    await api('DELETE', `/v1/accounts/${account}/users/${userId}`);
  });

  it('the event stream tells an integrator of the call, its answer, the transfer and its end as they happen', async function () {
    const base = `http://127.0.0.1:${konami.http.port}/v1/accounts/${account}`;
    const stream = await EventStream.open(`${base}/events`, { 'x-auth-token': token });
    const byQuery = await EventStream.open(`${base}/events?auth_token=${token}`);
    expect([stream.status, byQuery.status], 'a header or, as EventSource must, the query').to.deep.equal([200, 200]);
    try {
      const { alice, bob, callId } = await connect();
      await stream.next((e) => e.event_name === 'CHANNEL_CREATE' && e.channel.id === callId, "Alice's channel");
      await stream.next((e) => e.event_name === 'CHANNEL_ANSWER' && e.channel.id === side(bob), 'the answer');
      const { mary } = await transfer(callId);
      const started = await stream.next((e) => e.event_name === 'CHANNEL_TRANSFEROR' && e.channel.id === callId, 'the transfer, to Alice');
      expect(started.channel.transfer).to.deep.include({ state: 'calling', transferor: callId, transferee: side(bob) });
      await stream.next((e) => e.event_name === 'CHANNEL_TRANSFEREE' && e.channel.id === side(bob), 'the transfer, to Bob');
      await mary.answer();
      await stream.next((e) => e.channel.transfer?.state === 'consulting', 'the consultation');
      await alice.hangup();
      await stream.next((e) => e.event_name === 'CHANNEL_CREATE' && e.channel.id === side(mary), 'Mary taking her place');
      await stream.next((e) => e.event_name === 'CHANNEL_DESTROY' && e.channel.id === callId, 'Alice leaving');
      const done = await stream.next((e) => e.event_name === 'CHANNEL_TRANSFEREE' && e.channel.last_transfer?.outcome === 'completed', 'the transfer completed');
      expect(done.channel.other_leg).to.equal(side(mary));
      await mary.hangup();
      await bob.waitHangup();
      await stream.next((e) => e.event_name === 'CHANNEL_DESTROY' && e.channel.id === side(bob), "Bob's end");
      await byQuery.next((e) => e.event_name === 'CHANNEL_DESTROY' && e.channel.id === side(bob), "Bob's end, on the query-token stream");
    } finally {
      await stream.close();
      await byQuery.close();
    }
  });

  it('the event stream answers 401 without a live token and 404 for another account; one account holds at most 20 streams', async function () {
    const base = `http://127.0.0.1:${konami.http.port}/v1/accounts`;
    expect((await EventStream.open(`${base}/${account}/events`)).status).to.equal(401);
    expect((await EventStream.open(`${base}/${bare}/events`, { 'x-auth-token': token })).status).to.equal(404);
    const open: EventStream[] = [];
    try {
      for (let i = 0; i < 20; i++) open.push(await EventStream.open(`${base}/${account}/events`, { 'x-auth-token': token }));
      expect(open.map((s) => s.status).every((st) => st === 200)).to.equal(true);
      const over = await EventStream.open(`${base}/${account}/events`, { 'x-auth-token': token });
      expect(over.status).to.equal(429);
      const another = await EventStream.open(`${base}/${bare}/events`, { 'x-auth-token': bareToken });
      open.push(another);
      expect(another.status, 'another account is not held back').to.equal(200);
    } finally {
      for (const s of open) await s.close();
    }
  });

  it('API cancel, then a second cancel answers 409; a transfer of a call still ringing answers 409', async function () {
    const { alice, bob, callId } = await connect();
    const { mary } = await transfer(callId);
    const again = await api('POST', `/v1/accounts/${account}/channels/${callId}`, { data: { action: 'transfer', target: '2999' } });
    expect(again.status).to.equal(409);
    expect((await api('POST', `/v1/accounts/${account}/channels/${callId}`, { data: { action: 'cancel' } })).status).to.equal(202);
    await mary.waitHangup(3000);
    await expectBridges(phones.ari, callId, { main: [callId, side(bob)] }, 'Alice back with Bob');
    expect((await api('POST', `/v1/accounts/${account}/channels/${callId}`, { data: { action: 'cancel' } })).status).to.equal(409);
    expect((await api('POST', `/v1/accounts/${account}/channels/${callId}`, { data: { action: 'hangup' } })).status).to.equal(202);
    await alice.waitHangup();
    await bob.waitHangup();

    const carol = await phones.call('5999', { account });
    const dave = await phones.incoming('5999');
    await dave.ring();
    await eventually(() => channelOf(carol.peerId!), (c) => c?.state === 'ringing', 'a ringing call');
    const early = await api('POST', `/v1/accounts/${account}/channels/${carol.peerId}`, { data: { action: 'transfer', target: '2600' } });
    expect(early.status).to.equal(400);
    expect(early.json['data']).to.deep.equal({ other_leg_call_id: { required: { message: 'Channel is not bridged' } } });
    await carol.hangup();
    await dave.waitHangup();
  });
});
