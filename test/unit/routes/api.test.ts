import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../lib/log.js';
import { createApi, type Api } from '../../../lib/routes/api.js';
import type { CallService } from '../../../lib/routes/channels.js';
import { OPENAPI } from '../../../lib/routes/openapi.js';
import { RateLimiter } from '../../../lib/limits.js';
import { startHttp, type HttpServer } from '../../../lib/routes/server.js';
import { TokenSigner } from '../../../lib/routes/tokens.js';
import type { TransferData } from '../../../lib/stasis/modules/transfer.js';
import type { ActionResult, ChannelView, Scope, TransferView } from '../../../lib/stasis/control.js';
import { builtInModules } from '../../../lib/stasis/modules/index.js';
import { FileAccountStore } from '../../../lib/store/file-store.js';
import { UserKeys } from '../../../lib/store/users.js';
import { CallEvents } from '../../../lib/stasis/call-events.js';
import { fixedRoutes } from '../../fakes/dial-routes.js';
import { EventStream } from '../../harness/events.js';

const SECRET = Buffer.from('a'.repeat(32));
/** The calls of these tests: none ever changes. */
const NO_CALLS = { watch: () => () => undefined };

function channel(id: string, callId: string): ChannelView {
  return {
    id, uuid: id, call_id: callId, other_leg: null, direction: 'inbound', caller_id: { name: 'Alice', number: '1001' },
    callee_id: { name: '', number: '2001' }, destination: '2001', state: 'answered', answered: true, created_at: '', timestamp: 0, answered_at: '',
    transfer: null, last_transfer: null,
  };
}

const TRANSFER: TransferView = {
  id: 't1', state: 'calling', outcome: null, target: '2600', transferor: 'alice-1', transferee: 'bob-1', target_answered: false,
};

describe('the HTTP API (Kazoo crossbar conventions)', function () {
  let store: FileAccountStore;
  let dataDir: string;
  let server: HttpServer;
  let api: Api;
  let now: number;
  let base: string;
  let acme: { id: string; key: string };
  let other: { id: string; key: string };
  let calls: Array<[string, string, string?]>;
  let refuse: ActionResult<unknown> | undefined;
  let requests: Array<TransferData & { target: string }>;

  /** The scope each list and transfer was asked with. */
  let scopes: Scope[];

  const service: CallService = {
    list: (scope) => {
      scopes.push(scope);
      return scope.account === acme.id ? [channel('alice-1', 'alice-1')] : [channel('eve-1', 'eve-1')];
    },
    get: ({ account }, id) => (account === acme.id && id === 'alice-1' ? channel('alice-1', 'alice-1') : account === other.id && id === 'eve-1' ? channel('eve-1', 'eve-1') : undefined),
    async transfer(scope, id, request) {
      scopes.push(scope);
      const { account } = scope;
      calls.push(['transfer', id, request.target]);
      requests.push(request);
      if (refuse) return refuse as ActionResult<TransferView>;
      return account === acme.id && id === 'alice-1' ? { ok: true, value: TRANSFER } : { ok: false, error: 'not_found' };
    },
    async cancel(_scope, id) {
      calls.push(['cancel', id]);
      if (refuse) return refuse as ActionResult<TransferView>;
      return { ok: true, value: { ...TRANSFER, state: 'ended', outcome: 'cancelled' } };
    },
    async hangup({ account }, id) {
      calls.push(['hangup', id]);
      return account === acme.id && id === 'alice-1' ? { ok: true, value: null } : { ok: false, error: 'not_found' };
    },
    async break({ account }, id) {
      calls.push(['break', id]);
      return account === acme.id && id === 'alice-1' ? { ok: true, value: null } : { ok: false, error: 'not_found' };
    },
  };

  before(async function () {
    dataDir = mkdtempSync(join(tmpdir(), 'konami-api-'));
    store = await FileAccountStore.open(dataDir);
    const a = await store.create('Acme');
    const o = await store.create('Other');
    acme = { id: a.account.id, key: a.apiKey };
    other = { id: o.account.id, key: o.apiKey };
    now = Date.now();
    api = createApi({
      store, modules: builtInModules(), calls: service, mohClasses: ['default', 'jazz', 'x'],
      tokens: new TokenSigner(SECRET, 3600, () => now),
      dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), userKeys: new UserKeys(SECRET), events: new CallEvents(NO_CALLS),
      limiter: new RateLimiter(1000, 1000),
      readiness: { checks: () => ({ ari: true, store: true }) },
      log: silentLogger(),
    });
    server = await startHttp({ host: '127.0.0.1', port: 0 }, api.app, silentLogger());
    base = `http://127.0.0.1:${server.port}`;
  });

  after(async function () {
    await server.close();
    await store.close();
  });

  beforeEach(function () {
    calls = [];
    requests = [];
    scopes = [];
    refuse = undefined;
  });

  async function call(method: string, path: string, opts: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers['x-auth-token'] = opts.token;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${base}${path}`, { method, headers, body });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON: the assertions will say so
    }
    return { status: res.status, json, headers: res.headers };
  }

  async function tokenFor(key: string): Promise<string> {
    const r = await call('PUT', '/v1/api_auth', { body: { data: { api_key: key } } });
    expect(r.status).to.equal(201);
    return r.json['auth_token'] as string;
  }

  describe('auth', function () {
    it('exchanges an API key for a token (PUT and POST), in the envelope with a request id', async function () {
      for (const method of ['PUT', 'POST']) {
        const r = await call(method, '/v1/api_auth', { body: { data: { api_key: acme.key } } });
        expect(r.status).to.equal(201);
        expect(r.json).to.include({ status: 'success' });
        expect(r.json['auth_token']).to.match(/^v1\./);
        expect(r.json['data']).to.deep.include({ account_id: acme.id, account_name: 'Acme' });
        expect(r.json['request_id']).to.equal(r.headers.get('x-request-id'));
      }
    });

    it('401 for a wrong key, 400 naming api_key when it is missing', async function () {
      const wrong = await call('PUT', '/v1/api_auth', { body: { data: { api_key: 'kmi_nope' } } });
      expect(wrong.status).to.equal(401);
      expect(wrong.json).to.include({ status: 'error', error: '401', message: 'invalid credentials' });
      const missing = await call('PUT', '/v1/api_auth', { body: { data: {} } });
      expect(missing.status).to.equal(400);
      expect(missing.json['data']).to.have.property('api_key');
    });

    it('401 without a token, with a malformed, a forged or an expired one; the query form works', async function () {
      const path = `/v1/accounts/${acme.id}/channels`;
      expect((await call('GET', path)).status).to.equal(401);
      const malformed = await call('GET', path, { token: 'garbage' });
      expect(malformed.status).to.equal(401);
      expect(malformed.json['data']).to.deep.equal({ 'X-Auth-Token': { malformed: { message: 'the auth token is malformed' } } });
      const forged = new TokenSigner(Buffer.from('b'.repeat(32)), 3600).issue(acme.id, 'k').token;
      expect((await call('GET', path, { token: forged })).json['data']).to.have.nested.property('X-Auth-Token.forged');
      const token = await tokenFor(acme.key);
      expect((await call('GET', `${path}?auth_token=${encodeURIComponent(token)}`)).status).to.equal(200);
      now += 3601_000;
      try {
        expect((await call('GET', path, { token })).json['data']).to.have.nested.property('X-Auth-Token.expired');
      } finally {
        now -= 3601_000;
      }
    });
  });

  describe('channels', function () {
    let token: string;
    before(async function () {
      token = await tokenFor(acme.key);
    });

    it("lists the account's channels and shows one", async function () {
      const list = await call('GET', `/v1/accounts/${acme.id}/channels`, { token });
      expect(list.status).to.equal(200);
      expect((list.json['data'] as ChannelView[]).map((c) => c.id)).to.deep.equal(['alice-1']);
      const one = await call('GET', `/v1/accounts/${acme.id}/channels/alice-1`, { token });
      expect((one.json['data'] as ChannelView).caller_id).to.deep.equal({ name: 'Alice', number: '1001' });
    });

    it('a method a route does not take answers 405 in the envelope, naming the ones it does; any spelling of the path reaches its route', async function () {
      for (const [path, allowed] of [
        [`/v1/accounts/${acme.id}/channels`, 'GET HEAD'], [`/v1/accounts/${acme.id}/channels/alice-1`, 'GET HEAD POST'],
        ['/v1/api_auth', 'POST PUT'], ['/readyz', 'GET HEAD'],
      ] as const) {
        const r = await call('PATCH', path, { token });
        expect(r.status, path).to.equal(405);
        expect(r.json['status'], path).to.equal('error');
        expect(r.headers.get('allow')?.split(', ').sort().join(' '), path).to.equal(allowed);
      }
      for (const path of [`/v1/accounts/${acme.id}/channels/`, `/V1/Accounts/${acme.id}/Channels`, `/v2/accounts/${acme.id}/channels`]) {
        expect((await call('GET', path, { token })).status, path).to.equal(200);
      }
      expect((await call('GET', '/v1/accounts', { token })).status).to.equal(404);
      expect((await call('GET', '/v1/nothing', { token })).status).to.equal(404);
    });

    it("another account's call answers exactly like a call that does not exist (404)", async function () {
      const unknown = await call('GET', `/v1/accounts/${acme.id}/channels/nope`, { token });
      const foreign = await call('GET', `/v1/accounts/${acme.id}/channels/eve-1`, { token });
      const foreignAccount = await call('GET', `/v1/accounts/${other.id}/channels/eve-1`, { token });
      const foreignList = await call('GET', `/v1/accounts/${other.id}/channels`, { token });
      const foreignPost = await call('POST', `/v1/accounts/${other.id}/channels/eve-1`, { token, body: { data: { action: 'hangup' } } });
      for (const r of [unknown, foreign, foreignAccount, foreignList, foreignPost]) {
        expect(r.status).to.equal(404);
        const withoutId = (j: Record<string, unknown>) => Object.fromEntries(Object.entries(j).filter(([k]) => k !== 'request_id'));
        expect(withoutId(r.json)).to.deep.equal(withoutId(unknown.json));
      }
      expect(calls, 'nothing was done to the other account').to.deep.equal([]);
    });

    it('POST transfer answers 202 with the transfer', async function () {
      const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600' } } });
      expect(r.status).to.equal(202);
      expect(r.json['data']).to.deep.equal(TRANSFER);
      expect(calls).to.deep.equal([['transfer', 'alice-1', '2600']]);
    });

    it('POST cancel, hangup and break', async function () {
      for (const action of ['cancel', 'hangup', 'break']) {
        expect((await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action } } })).status).to.equal(202);
      }
      expect(calls.map((c) => c[0])).to.deep.equal(['cancel', 'hangup', 'break']);
    });

    it("a Kazoo client's transfer works unchanged under /v2, with its fields in any of Kazoo's spellings", async function () {
      const r = await call('POST', `/v2/accounts/${acme.id}/channels/alice-1`, {
        token, body: { data: { action: 'transfer', target: '2600', takeback_dtmf: '*1', moh: 'jazz', 'transfer-type': 'blind', ringback: '%(2000,4000,440,480)' } },
      });
      expect(r.status).to.equal(202);
      expect(requests).to.deep.equal([{ target: '2600', takeback_dtmf: '*1', moh: 'jazz', transfer_type: 'blind', ringback: '%(2000,4000,440,480)' }]);
      const listed = await call('GET', `/v2/accounts/${acme.id}/channels`, { token });
      expect(listed.status).to.equal(200);
      expect(listed.json['data']).to.deep.equal([channel('alice-1', 'alice-1')]);
      const guessed = await call('POST', `/v2/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600', Transfer_Type: 'blind' } } });
      expect(guessed.status, 'a spelling Kazoo does not use is refused, not guessed').to.equal(400);
      await call('POST', `/v2/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600', moh_class: 'x', 'Transfer-Type': 'attended' } } });
      expect(requests, 'the refused spelling reached no call').to.have.length(2);
      expect(requests.slice(1)).to.deep.equal([{ target: '2600', moh: 'x', transfer_type: 'attended' }]);
    });

    it('refuses a music-on-hold class the operator does not offer, naming moh', async function () {
      const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600', moh: 'someone-elses' } } });
      expect(r.status).to.equal(400);
      expect(r.json['data']).to.deep.equal({ moh: { enum: { message: 'must be a music-on-hold class the operator offers: default, jazz, x' } } });
      expect(requests).to.deep.equal([]);
    });

    it('answers an action named like a built-in property (toString, constructor) 400, never 500', async function () {
      for (const action of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
        const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action } } });
        expect(r.status, action).to.equal(400);
      }
    });

    it('refuses a field an action does not take, naming it (never silently ignored)', async function () {
      for (const data of [
        { action: 'transfer', target: '2600', takeback: '*1' },
        { action: 'hangup', target: '2600' },
        { action: 'break', cause: 17 },
      ]) {
        const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data } });
        expect(r.status).to.equal(400);
        const field = Object.keys(data).find((k) => k !== 'action' && !(data.action === 'transfer' && k === 'target'))!;
        expect(r.json['data']).to.have.property(field).that.has.property('unknown');
      }
      expect(calls).to.deep.equal([]);
    });

    it("answers Kazoo's other actions 400, naming what konami takes", async function () {
      for (const action of ['callflow', 'intercept', 'hold', 'move']) {
        const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action } } });
        expect(r.status).to.equal(400);
        const message = (r.json['data'] as Record<string, Record<string, { message: string }>>)['action']!['enum']!.message;
        expect(message).to.include(action).and.to.include('transfer, cancel, hangup, break');
      }
    });

    it("answers a transfer on a call that is not bridged, and one without target, as Kazoo does", async function () {
      refuse = { ok: false, error: 'not_bridged' };
      const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600' } } });
      expect(r.status).to.equal(400);
      expect(r.json['data']).to.deep.equal({ other_leg_call_id: { required: { message: 'Channel is not bridged' } } });
      const none = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer' } } });
      expect(none.json['data']).to.deep.equal({ target: { required: { message: 'No target destination specified' } } });
    });

    for (const [what, body, field, rule] of [
      ['a missing action', { data: {} }, 'action', 'required'],
      ['an unknown action', { data: { action: 'teleport' } }, 'action', 'enum'],
      ['a missing target', { data: { action: 'transfer' } }, 'target', 'required'],
      ['a malformed target', { data: { action: 'transfer', target: '26&00' } }, 'target', 'pattern'],
      ['a target with letters (a SIP user, a trunk)', { data: { action: 'transfer', target: 'bob' } }, 'target', 'pattern'],
      ['a target that names a trunk', { data: { action: 'transfer', target: '0900123@premium' } }, 'target', 'pattern'],
      ['a missing data envelope', { action: 'transfer' }, 'data', 'required'],
    ] as const) {
      it(`400 for ${what}, naming ${field}`, async function () {
        const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body });
        expect(r.status).to.equal(400);
        expect(r.json).to.include({ status: 'error', error: '400', message: 'validation error' });
        expect(r.json['data']).to.have.property(field).that.has.property(rule);
        expect(calls).to.deep.equal([]);
      });
    }

    for (const [error, status, message] of [
      ['not_bridged', 400, 'validation error'],
      ['in_progress', 409, 'a transfer is already in progress'],
      ['own_number', 400, 'validation error'],
      ['not_found', 404, 'bad identifier'],
      ['call_transfer_limit', 429, 'this call has started as many transfers as one call may'],
      ['account_transfer_rate', 429, 'the account is starting transfers faster than it may'],
      ['route_not_allowed', 409, 'the dial route of the transfer is not available to this account'],
    ] as const) {
      it(`${status} when the call refuses with ${error}`, async function () {
        refuse = { ok: false, error };
        const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600' } } });
        expect(r.status).to.equal(status);
        expect(r.json['message']).to.equal(message);
      });
    }

    it('503 with Retry-After while konami is not connected to Asterisk (an action now would be lost)', async function () {
      refuse = { ok: false, error: 'unavailable' };
      const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600' } } });
      expect(r.status).to.equal(503);
      expect(r.headers.get('retry-after')).to.equal('2');
      expect(r.json['status']).to.equal('error');
    });

    it('409 for a cancel with no transfer in progress', async function () {
      refuse = { ok: false, error: 'no_transfer' };
      const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1`, { token, body: { data: { action: 'cancel' } } });
      expect(r.status).to.equal(409);
    });

    it('413 for an oversized body, 415 for a body that is not JSON, 400 for broken JSON: never a 5xx', async function () {
      const path = `/v1/accounts/${acme.id}/channels/alice-1`;
      const big = await call('POST', path, { token, body: { data: { action: 'transfer', target: '1', pad: 'x'.repeat(70_000) } } });
      expect(big.status).to.equal(413);
      const form = await call('POST', path, { token, raw: 'action=transfer', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(form.status).to.equal(415);
      expect(form.json['data']).to.have.property('content-type');
      const broken = await call('POST', path, { token, raw: '{"data": ', headers: { 'content-type': 'application/json' } });
      expect(broken.status).to.equal(400);
      expect(broken.json['data']).to.have.nested.property('body.type');
    });
  });

  describe('users: a Transfer button for each employee, without the account key', function () {
    let admin: string;
    let userId: string;
    const PASSWORD = 'correct horse battery';
    const md5 = (t: string) => createHash('md5').update(t).digest('hex');
    const sha1 = (t: string) => createHash('sha1').update(t).digest('hex');

    before(async function () {
      admin = await tokenFor(acme.key);
      const r = await call('PUT', `/v2/accounts/${acme.id}/users`, {
        token: admin, body: { data: { username: 'alice', first_name: 'Alice', numbers: ['1001'], password: PASSWORD } },
      });
      expect(r.status, JSON.stringify(r.json)).to.equal(201);
      userId = (r.json['data'] as { id: string }).id;
    });

    const userToken = async (data: Record<string, unknown>) => call('PUT', '/v2/user_auth', { body: { data } });

    it('an account adds a user; the user is shown without credentials, and the store keeps no password or Kazoo hash of it', async function () {
      const r = await call('GET', `/v1/accounts/${acme.id}/users`, { token: admin });
      expect(r.json['data']).to.have.length(1);
      const shown = (r.json['data'] as Array<Record<string, unknown>>)[0]!;
      expect(shown).to.include({ id: userId, username: 'alice', first_name: 'Alice' });
      expect(shown).to.not.have.any.keys('password', 'credentials', 'credentials_sha', 'kid');
      const file = readFileSync(join(dataDir, 'accounts', `${acme.id}.json`), 'utf8');
      for (const secret of [PASSWORD, md5(`alice:${PASSWORD}`), sha1(`alice:${PASSWORD}`)]) expect(file).to.not.include(secret);
    });

    it("user_auth takes Kazoo's md5 or sha credentials with the account's name, or username and password with its id", async function () {
      for (const data of [
        { credentials: md5(`alice:${PASSWORD}`), account_name: 'acme' },
        { credentials: sha1(`alice:${PASSWORD}`), method: 'sha', account_name: 'Acme' },
        { username: 'alice', password: PASSWORD, account_id: acme.id },
      ]) {
        const r = await userToken(data);
        expect(r.status, JSON.stringify(data)).to.equal(201);
        expect(r.json['data']).to.include({ account_id: acme.id, owner_id: userId, username: 'alice' });
        expect(r.json['auth_token']).to.match(/^v1\./);
      }
    });

    it('user_auth answers one 401 for a wrong password, another account, and an unknown account', async function () {
      const answers = await Promise.all([
        userToken({ username: 'alice', password: 'wrong password', account_id: acme.id }),
        userToken({ username: 'alice', password: PASSWORD, account_id: other.id }),
        userToken({ credentials: md5(`alice:${PASSWORD}`), account_name: 'Other' }),
        userToken({ credentials: md5(`alice:${PASSWORD}`), account_name: 'nobody' }),
      ]);
      for (const r of answers) {
        expect(r.status).to.equal(401);
        expect(r.json['data']).to.deep.equal(answers[0]!.json['data']);
      }
    });

    it("a user's token sees and acts on the user's calls only; everything else answers as not found", async function () {
      const token = (await userToken({ username: 'alice', password: PASSWORD, account_id: acme.id })).json['auth_token'] as string;
      expect((await call('GET', `/v1/accounts/${acme.id}/users/${userId}/channels`, { token })).status).to.equal(200);
      expect((await call('GET', `/v1/accounts/${acme.id}/channels`, { token })).status).to.equal(200);
      const t = await call('POST', `/v1/accounts/${acme.id}/users/${userId}/channels/alice-1`, { token, body: { data: { action: 'transfer', target: '2600' } } });
      expect(t.status).to.equal(202);
      expect(scopes.map((sc) => [sc.account, [...(sc.numbers ?? [])]]), 'every call lookup is limited to the user\'s numbers')
        .to.deep.equal([[acme.id, ['1001']], [acme.id, ['1001']], [acme.id, ['1001']]]);
      const notFound = await call('GET', `/v1/accounts/${acme.id}/channels/nope`, { token: admin });
      for (const [method, path] of [
        ['GET', `/v1/accounts/${acme.id}/metaflows`],
        ['GET', `/v1/accounts/${acme.id}/users`],
        ['PUT', `/v1/accounts/${acme.id}/users`],
        ['GET', `/v1/accounts/${acme.id}/users/${'0'.repeat(32)}/channels`],
        ['GET', `/v1/accounts/${acme.id}/users/${'0'.repeat(32)}`],
        ['DELETE', `/v1/accounts/${acme.id}/users/${userId}`],
        ['GET', `/v1/accounts/${other.id}/channels`],
      ] as const) {
        const r = await call(method, path, { token, body: method === 'PUT' ? { data: { username: 'x', password: 'yyyyyyyy' } } : undefined });
        expect(r.status, `${method} ${path}`).to.equal(404);
        expect(r.json['data'], `${method} ${path}`).to.deep.equal(notFound.json['data']);
      }
      expect((await call('GET', `/v1/accounts/${acme.id}/users/${userId}`, { token })).status, 'the user reads itself').to.equal(200);
    });

    it("a new password ends the user's tokens; a number already another user's is refused, naming the field", async function () {
      const token = (await userToken({ username: 'alice', password: PASSWORD, account_id: acme.id })).json['auth_token'] as string;
      expect((await call('POST', `/v1/accounts/${acme.id}/users/${userId}`, { token: admin, body: { data: { password: 'another password' } } })).status).to.equal(200);
      expect((await call('GET', `/v1/accounts/${acme.id}/users/${userId}/channels`, { token })).status).to.equal(401);
      expect((await userToken({ username: 'alice', password: 'another password', account_id: acme.id })).status).to.equal(201);
      const taken = await call('PUT', `/v1/accounts/${acme.id}/users`, { token: admin, body: { data: { username: 'bob', password: 'bob password', numbers: ['1001'] } } });
      expect(taken.status).to.equal(400);
      expect(taken.json['data']).to.have.property('numbers').that.has.property('unique');
      const renamed = await call('PATCH', `/v1/accounts/${acme.id}/users/${userId}`, { token: admin, body: { data: { username: 'alicia' } } });
      expect(renamed.json['data'], 'a new username needs the password too').to.have.property('password');
      await call('POST', `/v1/accounts/${acme.id}/users/${userId}`, { token: admin, body: { data: { password: PASSWORD } } });
    });
  });

  describe("users cannot harm their account's administrator", function () {
    const PASSWORD = 'bob password long';
    let admin: string;
    let bobId: string;
    const bobToken = async () => (await call('PUT', '/v1/user_auth', { body: { data: { username: 'bob', password: PASSWORD, account_id: acme.id } } })).json['auth_token'] as string;

    before(async function () {
      admin = await tokenFor(acme.key);
      const r = await call('PUT', `/v1/accounts/${acme.id}/users`, { token: admin, body: { data: { username: 'bob', numbers: ['2001'], password: PASSWORD } } });
      bobId = (r.json['data'] as { id: string }).id;
    });

    it("a user's sign-out ends that user's tokens, and any number of them lists nothing against the account", async function () {
      const first = await bobToken();
      const second = await bobToken();
      for (let i = 0; i < 30; i++) expect((await call('DELETE', '/v1/token_auth', { token: await bobToken() })).status).to.equal(200);
      expect((await call('DELETE', '/v1/token_auth', { token: first })).status, 'already ended by the first sign-out').to.equal(401);
      expect((await call('GET', `/v1/accounts/${acme.id}/users/${bobId}/channels`, { token: second })).status).to.equal(401);
      expect((await store.get(acme.id))!.revoked_tokens ?? [], 'nothing listed').to.deep.equal([]);
      expect((await call('GET', `/v1/accounts/${acme.id}/channels`, { token: admin })).status, "the administrator's token lives on").to.equal(200);
    });

    it('event streams: three per user, the account\'s own apart; another user\'s stream is not found; konami stopping ends them', async function () {
      const events = new CallEvents(NO_CALLS);
      const streamsApi = createApi({
        store, modules: builtInModules(), calls: service, tokens: new TokenSigner(SECRET, 3600, () => now),
        dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), userKeys: new UserKeys(SECRET), events,
        limiter: new RateLimiter(1000, 1000), readiness: { checks: () => ({}) }, log: silentLogger(),
      });
      const srv = await startHttp({ host: '127.0.0.1', port: 0 }, streamsApi.app, silentLogger());
      const at = (path: string) => `http://127.0.0.1:${srv.port}/v1/accounts/${acme.id}${path}`;
      const open: EventStream[] = [];
      try {
        const token = await bobToken();
        for (let i = 0; i < 3; i++) open.push(await EventStream.open(at(`/users/${bobId}/events?auth_token=${token}`)));
        expect(open.map((st) => st.status)).to.deep.equal([200, 200, 200]);
        const fourth = await EventStream.open(at('/events'), { 'x-auth-token': token });
        expect(fourth.status, 'a fourth stream of the same user').to.equal(429);
        const admins = await EventStream.open(at('/events'), { 'x-auth-token': admin });
        open.push(admins);
        expect(admins.status, "the account's own streams are counted apart").to.equal(200);
        const other = await EventStream.open(at(`/users/${'0'.repeat(32)}/events`), { 'x-auth-token': token });
        expect(other.status).to.equal(404);
        expect(events.count(acme.id, bobId)).to.equal(3);
        events.close();
        await Promise.all(open.map((st) => st.ended()));
        expect(events.count(acme.id, '*'), 'every stream ended').to.equal(0);
      } finally {
        for (const st of open) await st.close();
        await srv.close();
      }
    });

    it("wrong passwords for an account's users are refused for a while after 20, right ones too; other accounts are untouched", async function () {
      const limited = createApi({
        store, modules: builtInModules(), calls: service, tokens: new TokenSigner(SECRET, 3600, () => now),
        dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), userKeys: new UserKeys(SECRET), events: new CallEvents(NO_CALLS),
        limiter: new RateLimiter(1000, 1000), loginFailures: new RateLimiter(0.001, 20, { pruneEveryMs: 0 }), readiness: { checks: () => ({}) }, log: silentLogger(),
      });
      const srv = await startHttp({ host: '127.0.0.1', port: 0 }, limited.app, silentLogger());
      const login = async (account: string, password: string) => (await fetch(`http://127.0.0.1:${srv.port}/v1/user_auth`, {
        method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { username: 'bob', password, account_id: account } }),
      })).status;
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 21; i++) statuses.push(await login(acme.id, `guess ${i}`));
        expect(statuses.slice(0, 20).every((st) => st === 401)).to.equal(true);
        expect(statuses[20]).to.equal(429);
        expect(await login(acme.id, PASSWORD), 'no more guesses, not even the right one, until the bucket refills').to.equal(429);
        expect(await login(other.id, 'guess'), 'another account is not held back').to.equal(401);
      } finally {
        await srv.close();
      }
    });
  });

  describe('metaflows', function () {
    it('reads, replaces with validation naming the field, and removes', async function () {
      const token = await tokenFor(acme.key);
      const path = `/v1/accounts/${acme.id}/metaflows`;
      expect((await call('GET', path, { token })).json['data']).to.equal(null);
      const bad = await call('POST', path, { token, body: { data: { digit_timeout: 5, numbers: { 22: { module: 'teleport' } } } } });
      expect(bad.status).to.equal(400);
      expect(bad.json['data']).to.have.property('digit_timeout').that.has.property('minimum');
      expect(bad.json['data']).to.have.property('numbers.22.module').that.has.property('enum');
      const good = await call('POST', path, { token, body: { data: { numbers: { 22: { module: 'resume' } }, patterns: { '21(\\d+)': { module: 'transfer' } } } } });
      expect(good.status).to.equal(200);
      expect((await call('GET', path, { token })).json['data']).to.deep.include({ binding_digit: '*', digit_timeout: 2000 });
      expect((await call('DELETE', path, { token })).status).to.equal(200);
      expect((await call('GET', path, { token })).json['data']).to.equal(null);
    });

    it("refuses data a module does not take: 8 KB of nested arrays in resume's data never reach the disk", async function () {
      const token = await tokenFor(acme.key);
      const path = `/v1/accounts/${acme.id}/metaflows`;
      const before = statSync(join(dataDir, 'accounts', `${acme.id}.json`)).size;
      const junk = JSON.parse(`${'['.repeat(8)}${'0,'.repeat(4000)}0${']'.repeat(8)}`) as unknown;
      const r = await call('POST', path, { token, body: { data: { numbers: { 22: { module: 'resume', data: { junk } } } } } });
      expect(r.status).to.equal(400);
      expect(r.json['data']).to.have.property('numbers.22.data.junk').that.has.property('unknown');
      expect(statSync(join(dataDir, 'accounts', `${acme.id}.json`)).size).to.equal(before);
    });

    it('answers 400 naming the body, never a 5xx, for deep nesting, and leaves no temporary file', async function () {
      const token = await tokenFor(acme.key);
      const path = `/v1/accounts/${acme.id}/metaflows`;
      for (const depth of [17, 5000, 20_000]) {
        const raw = `{"data": {"numbers": {"22": {"module": "resume", "data": {"x": ${'['.repeat(depth)}${']'.repeat(depth)}}}}}}`;
        const r = await call('POST', path, { token, raw, headers: { 'content-type': 'application/json' } });
        expect(r.status, `depth ${depth}`).to.equal(400);
        expect(r.json['data']).to.have.nested.property('body.depth');
      }
      // Brackets inside strings are text, not nesting.
      const inString = await call('POST', path, { token, body: { data: { numbers: { 22: { module: 'resume' } }, note: '['.repeat(100) } } });
      expect(inString.json['data']).not.to.have.property('body');
      expect(readdirSync(join(dataDir, 'accounts')).filter((n) => !n.endsWith('.json'))).to.deep.equal([]);
    });

    it('keeps metaflows on disk as compact JSON: a file no larger than what it holds', async function () {
      const token = await tokenFor(acme.key);
      await call('POST', `/v1/accounts/${acme.id}/metaflows`, { token, body: { data: { numbers: { 22: { module: 'resume' } } } } });
      const file = join(dataDir, 'accounts', `${acme.id}.json`);
      const text = readFileSync(file, 'utf8');
      expect(text.trimEnd()).to.equal(JSON.stringify(JSON.parse(text)));
    });
  });

  describe('operations', function () {
    it('echoes a valid incoming X-Request-ID and makes one otherwise', async function () {
      const mine = await call('GET', '/v1/openapi.json', { headers: { 'x-request-id': 'req-12345678' } });
      expect(mine.headers.get('x-request-id')).to.equal('req-12345678');
      const made = await call('GET', '/v1/openapi.json', { headers: { 'x-request-id': 'bad id!' } });
      expect(made.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    });

    it('health checks and the web app carry a request id too', async function () {
      for (const path of ['/healthz', '/readyz', '/']) {
        const res = await fetch(`${base}${path}`);
        expect(res.status, path).to.equal(200);
        expect(res.headers.get('x-request-id'), path).to.match(/^[0-9a-f-]{36}$/);
      }
    });

    it('every answer says nosniff and carries a restrictive content security policy: API, errors, health, the web app', async function () {
      for (const [method, path] of [['GET', '/v1/openapi.json'], ['GET', '/v1/nothing'], ['GET', '/healthz'], ['GET', '/'], ['GET', '/ui/app.js'], ['POST', '/v1/api_auth']]) {
        const res = await fetch(`${base}${path}`, { method });
        expect(res.headers.get('x-content-type-options'), path).to.equal('nosniff');
        expect(res.headers.get('content-security-policy'), path).to.match(/^default-src 'none'; script-src 'self';.*frame-ancestors 'none'/);
      }
    });

    it('unknown routes answer 404 in the envelope', async function () {
      const r = await call('GET', '/v1/nothing-here');
      expect(r.status).to.equal(404);
      expect(r.json).to.include({ status: 'error', error: '404' });
    });

    it('429 when a client exceeds the rate, with Retry-After', async function () {
      const limited = createApi({
        store, modules: builtInModules(), calls: service, tokens: new TokenSigner(SECRET, 3600),
        dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), userKeys: new UserKeys(SECRET), events: new CallEvents(NO_CALLS),
      limiter: new RateLimiter(1, 2), readiness: { checks: () => ({}) }, log: silentLogger(),
      });
      const s = await startHttp({ host: '127.0.0.1', port: 0 }, limited.app, silentLogger());
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 4; i++) statuses.push((await fetch(`http://127.0.0.1:${s.port}/v1/openapi.json`)).status);
        expect(statuses).to.deep.equal([200, 200, 429, 429]);
        const r = await fetch(`http://127.0.0.1:${s.port}/v1/openapi.json`);
        expect(r.headers.get('retry-after')).to.equal('1');
        expect(((await r.json()) as { error: string }).error).to.equal('429');
      } finally {
        await s.close();
      }
    });

    it('the OpenAPI document describes every route the server has, and nothing else', async function () {
      const served = api.routes();
      const documented = Object.entries(OPENAPI.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
      expect(served).to.deep.equal(documented);
      const doc = await call('GET', '/v1/openapi.json');
      expect(doc.json['openapi']).to.equal('3.0.3');
    });
  });

  describe('tokens die with their rights', function () {
    it('sign-out (DELETE /v1/token_auth) revokes that token only, at once', async function () {
      const signedOut = await tokenFor(acme.key);
      const other = await tokenFor(acme.key);
      const path = `/v1/accounts/${acme.id}/channels`;
      expect((await call('GET', '/v1/token_auth', { token: signedOut })).json['data']).to.include({ account_id: acme.id });
      expect((await call('DELETE', '/v1/token_auth', { token: signedOut })).status).to.equal(200);
      const refused = await call('GET', path, { token: signedOut });
      expect(refused.status).to.equal(401);
      expect(refused.json['data']).to.have.nested.property('X-Auth-Token.revoked');
      expect((await call('GET', path, { token: other })).status).to.equal(200);
      expect((await call('DELETE', '/v1/token_auth')).status).to.equal(401);
    });

    it('a rotated key takes its tokens with it; the new key works', async function () {
      const doomed = await store.create('Rotating');
      const old = await tokenFor(doomed.apiKey);
      const { apiKey } = await store.rotateApiKey(doomed.account.id);
      const path = `/v1/accounts/${doomed.account.id}/channels`;
      expect((await call('GET', path, { token: old })).json['data']).to.have.nested.property('X-Auth-Token.revoked');
      expect((await call('PUT', '/v1/api_auth', { body: { data: { api_key: doomed.apiKey } } })).status).to.equal(401);
      expect((await call('GET', path, { token: await tokenFor(apiKey) })).status).to.equal(200);
    });

    it("a removed account's tokens stop working at once", async function () {
      const doomed = await store.create('Leaving');
      const token = await tokenFor(doomed.apiKey);
      await store.remove(doomed.account.id);
      const r = await call('GET', `/v1/accounts/${doomed.account.id}/metaflows`, { token });
      expect(r.status).to.equal(401);
      expect(r.json['data']).to.have.nested.property('X-Auth-Token.revoked');
    });

    it('?auth_token= is read for GET only: a change needs the header', async function () {
      const token = await tokenFor(acme.key);
      const q = `?auth_token=${encodeURIComponent(token)}`;
      expect((await call('GET', `/v1/accounts/${acme.id}/metaflows${q}`)).status).to.equal(200);
      const r = await call('POST', `/v1/accounts/${acme.id}/channels/alice-1${q}`, { body: { data: { action: 'hangup' } } });
      expect(r.status).to.equal(401);
      expect(r.json['data']).to.have.nested.property('X-Auth-Token.required');
      expect(calls).to.deep.equal([]);
    });
  });

  describe('rate limits count clients, not tokens', function () {
    let s: HttpServer;
    let url: string;
    const limitedApi = (trustedProxies: string[] = []) => createApi({
      store, modules: builtInModules(), calls: service, tokens: new TokenSigner(SECRET, 3600, () => now),
      dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), userKeys: new UserKeys(SECRET), events: new CallEvents(NO_CALLS), trustedProxies,
      limiter: new RateLimiter(0.001, 3), readiness: { checks: () => ({}) }, log: silentLogger(),
    });
    const statuses = async (n: number, make: (i: number) => RequestInit & { path?: string }) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const { path, ...init } = make(i);
        out.push((await fetch(`${url}${path ?? `/v1/accounts/${acme.id}/channels`}`, init)).status);
      }
      return out;
    };

    beforeEach(async function () {
      s = await startHttp({ host: '127.0.0.1', port: 0 }, limitedApi().app, silentLogger());
      url = `http://127.0.0.1:${s.port}`;
    });

    afterEach(async function () {
      await s.close();
    });

    it("one account's five tokens share one quota", async function () {
      const tokens: string[] = [];
      for (let i = 0; i < 5; i++) tokens.push(await tokenFor(acme.key));
      expect(await statuses(5, (i) => ({ headers: { 'x-auth-token': tokens[i]! } }))).to.deep.equal([200, 200, 200, 429, 429]);
    });

    it("an account's users draw from their own bucket: they cannot spend the administrator's requests", async function () {
      const admin = await tokenFor(acme.key);
      const made = await call('PUT', `/v1/accounts/${acme.id}/users`, { token: admin, body: { data: { username: 'carol', numbers: ['3003'], password: 'carol password' } } });
      expect(made.status).to.equal(201);
      const login = await fetch(`${url}/v1/user_auth`, {
        method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { username: 'carol', password: 'carol password', account_id: acme.id } }),
      });
      const user = ((await login.json()) as { auth_token: string }).auth_token;
      expect(await statuses(4, () => ({ headers: { 'x-auth-token': user } }))).to.deep.equal([200, 200, 200, 429]);
      expect(await statuses(3, () => ({ headers: { 'x-auth-token': admin } })), 'the administrator still has all of its own').to.deep.equal([200, 200, 200]);
    });

    it('made-up tokens count against the address they come from', async function () {
      const forged = (i: number) => new TokenSigner(Buffer.from('f'.repeat(32)), 3600).issue(acme.id, `k${i}`).token;
      expect(await statuses(5, (i) => ({ headers: { 'x-auth-token': forged(i) } }))).to.deep.equal([401, 401, 401, 429, 429]);
    });

    it('health checks, metrics and the web app are limited too', async function () {
      const paths = ['/healthz', '/metrics', '/', '/readyz', '/healthz'];
      expect(await statuses(5, (i) => ({ path: paths[i] }))).to.deep.equal([200, 200, 200, 429, 429]);
    });

    it('X-Forwarded-For names the client only behind a trusted proxy, read from the right', async function () {
      const spoof = (i: number) => ({ path: '/healthz', headers: { 'x-forwarded-for': `10.0.0.${i}` } });
      expect(await statuses(4, spoof), 'not trusted: every request is 127.0.0.1').to.deep.equal([200, 200, 200, 429]);
      await s.close();
      s = await startHttp({ host: '127.0.0.1', port: 0 }, limitedApi(['127.0.0.1']).app, silentLogger());
      url = `http://127.0.0.1:${s.port}`;
      expect(await statuses(4, spoof), 'trusted: each forwarded address its own client').to.deep.equal([200, 200, 200, 200]);
      // What a client writes at the left does not choose its bucket: the proxy's own entry does.
      const chained = (i: number) => ({ path: '/healthz', headers: { 'x-forwarded-for': `10.9.9.${i}, 10.0.0.77` } });
      expect(await statuses(4, chained)).to.deep.equal([200, 200, 200, 429]);
      // A port the proxy appended is not a client of its own.
      const ported = (i: number) => ({ path: '/healthz', headers: { 'x-forwarded-for': `10.0.0.88:${1000 + i}` } });
      expect(await statuses(4, ported)).to.deep.equal([200, 200, 200, 429]);
    });

    it("a flood of addresses never pushes an account's bucket (and its debt) out", async function () {
      await s.close();
      const tiny = createApi({
        store, modules: builtInModules(), calls: service, tokens: new TokenSigner(SECRET, 3600, () => now),
        dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }), userKeys: new UserKeys(SECRET), events: new CallEvents(NO_CALLS), trustedProxies: ['127.0.0.1'],
        limiter: new RateLimiter(0.001, 3, { maxClients: 5 }), readiness: { checks: () => ({}) }, log: silentLogger(),
      });
      s = await startHttp({ host: '127.0.0.1', port: 0 }, tiny.app, silentLogger());
      url = `http://127.0.0.1:${s.port}`;
      const token = await tokenFor(acme.key);
      expect(await statuses(3, () => ({ headers: { 'x-auth-token': token } }))).to.deep.equal([200, 200, 200]);
      await statuses(20, (i) => ({ path: '/healthz', headers: { 'x-forwarded-for': `10.1.0.${i}` } }));
      expect(await statuses(1, () => ({ headers: { 'x-auth-token': token } }))).to.deep.equal([429]);
    });
  });
});
