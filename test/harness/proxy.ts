// A TCP proxy between konami and ARI that a test can cut: every connection
// through it is dropped and new ones are refused until it is restored. It
// stands for a network failure between konami and Asterisk.
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './process.js';

export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

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

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
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
