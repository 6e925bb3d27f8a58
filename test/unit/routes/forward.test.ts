import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Context } from 'koa';
import { ApiError } from '../../../lib/routes/errors.js';
import { askPeers, FORWARDED_HEADER, forwardToOwner, relayPeerStreams } from '../../../lib/routes/forward.js';

/** A peer instance: answers with `status` and remembers what it was asked. */
async function peer(status: number): Promise<{ address: string; asked: IncomingMessage[]; server: Server }> {
  const asked: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    asked.push(req);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: status < 400 ? 'success' : 'error', data: status < 400 ? [{ id: 'c1' }] : {} }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { address: `http://127.0.0.1:${(server.address() as { port: number }).port}`, asked, server };
}

function request(logged: unknown[]): Context {
  const headers: Record<string, string> = { 'x-auth-token': 'token-1' };
  return {
    method: 'GET', path: '/v1/accounts/a1/channels/c1', querystring: 'auth_token=secret-in-query',
    // A request line in absolute form: it must never choose the host the request goes to.
    originalUrl: 'http://evil.example/v1/accounts/a1/channels/c1?auth_token=secret-in-query',
    get: (name: string) => headers[name.toLowerCase()] ?? '',
    state: { requestId: 'req-12345678', log: { warn: (...args: unknown[]) => void logged.push(args) } },
    status: 404, body: undefined, set: () => undefined,
  } as unknown as Context;
}

describe('requests put to the other instances', function () {
  const servers: Server[] = [];
  afterEach(function () {
    for (const s of servers.splice(0)) s.close();
  });

  it('go to each peer\'s own address with the request\'s path, query and token, marked as forwarded', async function () {
    const p = await peer(200);
    servers.push(p.server);
    const { answers, failed } = await askPeers(request([]), { addresses: async () => [p.address] });
    expect(failed).to.equal(false);
    expect(answers.map((a) => a.status)).to.deep.equal([200]);
    expect(p.asked[0]!.url).to.equal('/v1/accounts/a1/channels/c1?auth_token=secret-in-query');
    expect(p.asked[0]!.headers[FORWARDED_HEADER]).to.equal('1');
    expect(p.asked[0]!.headers['x-auth-token']).to.equal('token-1');
  });

  it('a peer that does not answer makes the answer 503, never a 404 that may be wrong, and nothing of the URL is logged', async function () {
    const logged: unknown[] = [];
    const gone = await peer(404);
    servers.push(gone.server);
    const other = await peer(404);
    other.server.close();
    let thrown: unknown;
    try {
      await forwardToOwner(request(logged), { addresses: async () => [gone.address, other.address] });
    } catch (err) {
      thrown = err;
    }
    expect((thrown as ApiError).status).to.equal(503);
    expect(JSON.stringify(logged)).not.to.contain('secret-in-query').and.not.to.contain('token-1');
  });

  it('the instances could not be listed (the database is away): 503 as well', async function () {
    const err = await forwardToOwner(request([]), { addresses: async () => { throw new Error('database down'); } }).then(() => undefined, (e: unknown) => e);
    expect((err as ApiError).status).to.equal(503);
  });

  it('every peer says 404: the call exists nowhere (the caller answers 404)', async function () {
    const p = await peer(404);
    servers.push(p.server);
    expect(await forwardToOwner(request([]), { addresses: async () => [p.address] })).to.equal(false);
  });
});

describe("another instance's event stream, relayed", function () {
  it('passes on its events (CRLF lines too, each data line apart), drops frames that are no event, and closes when the client leaves', async function () {
    let closed: () => void = () => undefined;
    const gone = new Promise<void>((r) => (closed = r));
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 2000\n: listening\n\n');
      res.write('event: CHANNEL_CREATE\r\ndata: {"a":1}\r\n\r\n');
      res.write('event: not an event\ndata: injected\n\n');
      res.write('event: CHANNEL_ANSWER\ndata: line one\ndata: line two\n\n');
      req.on('close', () => closed());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const got: Array<[string, string[]]> = [];
    const relays = relayPeerStreams(request([]), { addresses: async () => [address] }, (name, data) => got.push([name, data]));
    try {
      for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(got).to.deep.equal([['CHANNEL_CREATE', ['{"a":1}']], ['CHANNEL_ANSWER', ['line one', 'line two']]]);
    } finally {
      relays.stop();
    }
    await gone;
    server.close();
  });

  it('is ready only once every other instance\'s stream is open or refused, so a client told it listens misses none of their events', async function () {
    let answer: () => void = () => undefined;
    const server = createServer((req, res) => {
      // The peer opens its stream late, and sends an event at once.
      answer = () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: CHANNEL_ANSWER\ndata: {"b":2}\n\n');
      };
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const refused = 'http://127.0.0.1:9';
    const relays = relayPeerStreams(request([]), { addresses: async () => [refused, address] }, () => undefined);
    try {
      let ready = false;
      void relays.ready.then(() => (ready = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(ready, 'not ready while a peer has not opened its stream').to.equal(false);
      answer();
      await relays.ready;
    } finally {
      relays.stop();
      server.closeAllConnections();
      server.close();
    }
  });
});
