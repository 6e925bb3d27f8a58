import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from '../log.js';
import { healthRoutes, type Readiness } from './health.js';

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHttp(
  listen: { host: string; port: number },
  deps: { readiness: Readiness; log: Logger },
): Promise<HttpServer> {
  const app = new Koa();
  const health = healthRoutes(deps.readiness);
  app.use(health.routes()).use(health.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  deps.log.info({ host: listen.host, port }, 'HTTP API listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
