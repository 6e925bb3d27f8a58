// ARI's REST operations over kept-alive HTTP connections: one request is a
// path, a query and, for a new channel, a JSON body; the answer is ARI's own
// JSON and its HTTP status (which ari-client loses). This is the hot path of
// every call, so it does no more than that.
import { Agent, request } from 'node:http';
import { AriError } from './ari.js';

export interface AriRestSettings {
  /** Asterisk's HTTP server, e.g. http://127.0.0.1:8088 (no path). */
  url: string;
  username: string;
  password: string;
  /** How long one request may take before it counts as failed (ms). */
  timeoutMs: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Query = Record<string, string | number | boolean | undefined>;

export class AriRest {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  private readonly host: string;
  private readonly port: number;
  private readonly base: string;
  private readonly auth: string;

  constructor(private readonly settings: AriRestSettings) {
    const u = new URL(settings.url);
    if (u.protocol !== 'http:') throw new Error(`ARI_URL: ${u.protocol} is not supported here (http: only)`);
    this.host = u.hostname;
    this.port = Number(u.port || 80);
    this.base = `${u.pathname.replace(/\/+$/, '')}/ari`;
    this.auth = `Basic ${Buffer.from(`${settings.username}:${settings.password}`).toString('base64')}`;
  }

  /** One ARI operation: resolves with ARI's JSON answer (undefined for none), rejects with an AriError carrying the status. */
  async call<T>(operation: string, method: Method, path: string, query: Query = {}, body?: unknown): Promise<T> {
    try {
      return await this.send<T>(operation, method, path, query, body);
    } catch (err) {
      // Asterisk closes a kept connection after a while idle; a request that met one closing was
      // never read by Asterisk, and is sent once more on a fresh connection.
      if (err instanceof StaleConnection) return this.send<T>(operation, method, path, query, body);
      throw err;
    }
  }

  private send<T>(operation: string, method: Method, path: string, query: Query, body: unknown): Promise<T> {
    let qs = '';
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      qs += `${qs ? '&' : '?'}${k}=${encodeURIComponent(String(v))}`;
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request({
        host: this.host, port: this.port, method, path: `${this.base}${path}${qs}`, agent: this.agent,
        headers: {
          authorization: this.auth,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : { 'content-length': 0 }),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          if (status >= 200 && status < 300) resolve(json as T);
          else reject(new AriError(operation, (json as { message?: string } | undefined)?.message ?? (text || `HTTP ${status}`), status));
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(new AriError(operation, err.message, undefined));
        });
      });
      // A request Asterisk never answers must not freeze the call waiting on it.
      const timer = setTimeout(() => {
        req.destroy();
        reject(new AriError(operation, `no answer within ${this.settings.timeoutMs} ms`, 504));
      }, this.settings.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (req.reusedSocket && err.code === 'ECONNRESET') reject(new StaleConnection());
        else reject(new AriError(operation, err.message, undefined));
      });
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A kept connection Asterisk had closed before the request reached it. */
class StaleConnection extends Error {}

/** A path segment (an id) as ARI expects it in a URL. */
export const seg = (id: string): string => encodeURIComponent(id);
