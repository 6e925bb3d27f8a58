// A TCP proxy between konami and a server (ARI, PostgreSQL) that a test can
// cut: every connection through it is dropped and new ones are refused until
// it is restored; or partition: nothing passes any more, and nobody is told
// (no reset, no close), as when a network silently loses a machine.
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './process.js';

export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private partitioned = false;

  private constructor(private readonly target: { host: string; port: number }, readonly port: number) {}

  /** Listens on a free loopback port, forwarding to `targetUrl`'s host and port. */
  static async start(targetUrl: string): Promise<CuttableProxy> {
    const u = new URL(targetUrl);
    const proxy = new CuttableProxy({ host: u.hostname, port: Number(u.port || 80) }, await freePort());
    await proxy.restore();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drops every connection and refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Nothing passes any more, either way, on connections open or new; nobody is told. */
  partition(): void {
    this.partitioned = true;
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      if (this.partitioned) {
        // Accepted and never answered: the connection hangs as across a lost network.
        this.sockets.add(client);
        client.pause();
        client.on('error', () => undefined);
        return;
      }
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}
