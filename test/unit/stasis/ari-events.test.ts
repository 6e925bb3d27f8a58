import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { silentLogger } from '../../../lib/log.js';
import { AriEventSocket, EVENT_SOCKET_TIMING, type EventSocketTiming } from '../../../lib/stasis/ari-events.js';

/** A stand-in for Asterisk's event websocket: records how it was asked, sends what the test says. */
class FakeEvents {
  readonly server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  readonly sockets: WebSocket[] = [];
  readonly requests: Array<{ url: string; auth: string | undefined }> = [];
  answerPings = true;

  constructor() {
    this.server.on('connection', (ws, req) => {
      this.requests.push({ url: req.url ?? '', auth: req.headers.authorization });
      this.sockets.push(ws);
      // ws answers pings by itself; a peer that vanished does not: the fake stops its socket from reading.
      if (!this.answerPings) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    });
  }

  static async listening(): Promise<FakeEvents> {
    const f = new FakeEvents();
    await new Promise((r) => f.server.once('listening', r));
    f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
    return f;
  }

  url = '';

  async close(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    await new Promise((r) => this.server.close(r));
  }
}

const until = async (what: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('AriEventSocket (the event websocket)', () => {
  let fake: FakeEvents;
  let socket: AriEventSocket | undefined;
  beforeEach(async () => {
    fake = await FakeEvents.listening();
  });
  afterEach(async () => {
    socket?.stop();
    await fake.close();
  });

  const open = (opened: () => Promise<void> = async () => undefined, timing: Partial<EventSocketTiming> = {}, url = fake.url) => {
    socket = new AriEventSocket({ url, username: 'konami', password: 's3cret', app: 'konami' },
      silentLogger(), { initialMs: 10, maxMs: 20 }, opened, { ...EVENT_SOCKET_TIMING, ...timing });
    return socket;
  };

  it("asks for the application's own events only, with the credentials in a header and not in the address", async () => {
    await open().start();
    expect(fake.requests).to.have.length(1);
    expect(fake.requests[0]!.url).to.equal('/ari/events?app=konami&subscribeAll=false');
    expect(fake.requests[0]!.auth).to.equal(`Basic ${Buffer.from('konami:s3cret').toString('base64')}`);
  });

  it('hands on each event as parsed JSON, and skips a message that is not JSON without dropping the connection', async () => {
    const s = open();
    const got: unknown[] = [];
    s.on('message', (e) => got.push(e));
    await s.start();
    fake.sockets[0]!.send('{"type":"StasisStart","args":[]}');
    fake.sockets[0]!.send('not json {');
    fake.sockets[0]!.send('{"type":"StasisEnd"}');
    await until(() => got.length === 2);
    expect(got).to.deep.equal([{ type: 'StasisStart', args: [] }, { type: 'StasisEnd' }]);
    expect(fake.requests).to.have.length(1);
  });

  it('counts as up only once its set-up ran, and runs it again after every reconnection', async () => {
    let setUps = 0;
    const s = open(async () => {
      await new Promise((r) => setTimeout(r, 20));
      setUps++;
    });
    const ups: number[] = [];
    s.on('up', () => ups.push(setUps));
    let downs = 0;
    s.on('down', () => downs++);
    await s.start();
    expect(ups).to.deep.equal([1]);
    fake.sockets[0]!.close();
    await until(() => ups.length === 2);
    expect(ups).to.deep.equal([1, 2]);
    expect(downs).to.equal(1);
    expect(fake.requests).to.have.length(2);
  });

  it('keeps trying while the server is away, for as long as it takes', async () => {
    const { port } = fake.server.address() as AddressInfo;
    const url = fake.url;
    await fake.close();
    fake = await FakeEvents.listening(); // for afterEach: another port
    socket = new AriEventSocket({ url, username: 'konami', password: 's3cret', app: 'konami' },
      silentLogger(), { initialMs: 10, maxMs: 20 }, async () => undefined);
    let up = false;
    const started = socket.start().then(() => {
      up = true;
    });
    // Several attempts fail while nothing listens; then the server is back on the same port.
    await new Promise((r) => setTimeout(r, 150));
    expect(up).to.equal(false);
    const back = new WebSocketServer({ port, host: '127.0.0.1' });
    try {
      await started;
      expect(back.clients.size).to.equal(1);
    } finally {
      for (const c of back.clients) c.terminate();
      await new Promise((r) => back.close(r));
    }
  });

  it('closes a connection whose peer stops answering pings, and opens a new one', async () => {
    fake.answerPings = false;
    const s = open(async () => undefined, { pingIntervalMs: 30 });
    let downs = 0;
    s.on('down', () => downs++);
    await s.start();
    fake.answerPings = true;
    await until(() => fake.requests.length === 2, 2000);
    expect(downs).to.equal(1);
  });

  it('stop() ends the connection for good, and a start() still waiting returns', async () => {
    await fake.close();
    const s = open();
    const started = s.start();
    await new Promise((r) => setTimeout(r, 50));
    s.stop();
    await started;
    const attempts = fake.requests.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.requests.length).to.equal(attempts);
  });

  it('gives up a handshake the server never answers, and tries again', async () => {
    // A server that takes connections and reads the upgrade request but never answers it.
    const silent = createServer((c) => c.on('error', () => undefined));
    const held: Socket[] = [];
    let closed = 0;
    silent.on('connection', (c) => {
      held.push(c);
      c.resume();
      c.on('close', () => closed++);
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      open(async () => undefined, { handshakeTimeoutMs: 50 },
        `http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      void socket!.start();
      await until(() => held.length >= 3, 2000);
      // Each was closed by konami before the next was opened.
      await until(() => closed >= held.length - 1, 2000);
    } finally {
      socket!.stop();
      for (const c of held) c.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('an event whose handler throws is logged and the connection stays up for the next', async () => {
    const s = open();
    const got: unknown[] = [];
    let downs = 0;
    s.on('down', () => downs++);
    s.on('message', (e: { type: string }) => {
      if (e.type === 'Bad') throw new Error('handler fault');
      got.push(e);
    });
    await s.start();
    fake.sockets[0]!.send('{"type":"Bad"}');
    fake.sockets[0]!.send('{"type":"Good"}');
    await until(() => got.length === 1);
    expect(got).to.deep.equal([{ type: 'Good' }]);
    expect(downs).to.equal(0);
    expect(fake.requests).to.have.length(1);
  });

  it('taken over by another connection: down at once, back after a wait that grows each time it happens again', async () => {
    const s = open(async () => undefined, { replacedBackoff: { initialMs: 100, maxMs: 1000 } });
    await s.start();
    const log: string[] = [];
    s.on('down', () => log.push('down'));
    s.on('up', () => log.push('up'));
    const t0 = Date.now();
    const first = s.replaced();
    await until(() => log.length === 2);
    const back1 = Date.now() - t0;
    const t1 = Date.now();
    const second = s.replaced();
    await until(() => log.length === 4);
    const back2 = Date.now() - t1;
    expect(log).to.deep.equal(['down', 'up', 'down', 'up']);
    // 100 ms then 200 ms, each give or take a quarter: never the busy loop of an immediate retake.
    expect(first).to.be.within(75, 125);
    expect(second).to.be.within(150, 250);
    expect(back1).to.be.at.least(first - 5);
    expect(back2).to.be.at.least(second - 5);
    expect(fake.requests).to.have.length(3);
  });

  it("a listener of 'down' or 'up' that throws is logged, and the connection is opened again all the same", async function () {
    const s = open();
    await s.start();
    s.on('down', () => {
      throw new Error('down listener fault');
    });
    s.on('up', () => {
      throw new Error('up listener fault');
    });
    fake.sockets[0]!.close();
    await until(() => fake.requests.length === 2);
    fake.sockets[1]!.close();
    await until(() => fake.requests.length === 3);
  });
});
