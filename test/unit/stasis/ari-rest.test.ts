// ARI's REST operations as konami sends them (lib/stasis/ari-rest.ts), against
// a local HTTP server standing in for Asterisk.
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AriError } from '../../../lib/stasis/ari.js';
import { AriRest } from '../../../lib/stasis/ari-rest.js';

describe("ARI's REST operations over kept-alive connections", function () {
  let server: Server;
  let seen: Array<{ method: string; url: string; auth: string | undefined; body: string; socket: number }>;
  let answer: (req: IncomingMessage) => { status: number; body?: unknown } | 'never';
  let rest: AriRest;
  const sockets = new Map<unknown, number>();

  beforeEach(async function () {
    seen = [];
    answer = () => ({ status: 204 });
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (!sockets.has(req.socket)) sockets.set(req.socket, sockets.size + 1);
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body, socket: sockets.get(req.socket)! });
        const a = answer(req);
        if (a === 'never') return;
        res.writeHead(a.status, a.body === undefined ? {} : { 'content-type': 'application/json' });
        res.end(a.body === undefined ? undefined : JSON.stringify(a.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    rest = new AriRest({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, username: 'konami', password: 's3cret', timeoutMs: 300 });
  });

  afterEach(async function () {
    rest.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends the path, the query (without what is undefined), the JSON body and the credentials; answers with ARI\'s JSON', async function () {
    answer = () => ({ status: 200, body: { id: 'c1', state: 'Down' } });
    const got = await rest.call('channels.create', 'POST', '/channels/create', { endpoint: 'PJSIP/2600@trunk', app: 'konami', originator: undefined }, { variables: { 'CALLERID(num)': '1001' } });
    expect(got).to.deep.equal({ id: 'c1', state: 'Down' });
    expect(seen[0]).to.deep.include({
      method: 'POST', url: '/ari/channels/create?endpoint=PJSIP%2F2600%40trunk&app=konami',
      auth: `Basic ${Buffer.from('konami:s3cret').toString('base64')}`, body: '{"variables":{"CALLERID(num)":"1001"}}',
    });
  });

  it('keeps one connection for requests one after another', async function () {
    for (let i = 0; i < 5; i++) await rest.call('channels.answer', 'POST', `/channels/c${i}/answer`);
    expect(new Set(seen.map((s) => s.socket)).size).to.equal(1);
  });

  it('sends a request once more on a fresh connection when the kept one was closed under it', async function () {
    await rest.call('channels.answer', 'POST', '/channels/a/answer');
    let dropped = false;
    answer = (req) => {
      if (!dropped) {
        // As Asterisk closing an idle kept connection just as the request arrives: no answer at all.
        dropped = true;
        req.socket.destroy();
        return 'never';
      }
      return { status: 204 };
    };
    await rest.call('channels.hangup', 'DELETE', '/channels/a');
    expect(seen.map((r) => r.url)).to.deep.equal(['/ari/channels/a/answer', '/ari/channels/a', '/ari/channels/a']);
    const [first, cut, again] = seen.map((r) => r.socket);
    expect(cut, 'the kept connection was used').to.equal(first);
    expect(again, 'then a fresh one').to.not.equal(first);
  });

  it("keeps ARI's status in the error: a channel already gone is a 404 the call logic tolerates", async function () {
    answer = () => ({ status: 404, body: { message: 'Channel not found' } });
    const err = await rest.call('channels.hangup', 'DELETE', '/channels/x').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(AriError);
    expect(err).to.include({ status: 404, gone: true, message: 'channels.hangup: Channel not found' });
  });

  it('gives up on a request Asterisk never answers (504), so no call waits forever', async function () {
    answer = () => 'never';
    const err = await rest.call('channels.dial', 'POST', '/channels/x/dial').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(AriError).and.include({ status: 504 });
  });
});
