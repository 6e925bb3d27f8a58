// ARI's event websocket for one application: opened, kept open for as long as
// it takes (a connection that drops is opened again, with backoff, forever),
// pinged so that a peer that vanished without closing is noticed, and each
// message handed on as parsed JSON. Every event of every call passes here,
// so it does no more than that.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { Logger } from '../log.js';

export interface AriEventSettings {
  /** Asterisk's HTTP server, e.g. http://127.0.0.1:8088 (no path). */
  url: string;
  username: string;
  password: string;
  app: string;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, b: Backoff): number {
  const exp = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(exp * (0.75 + Math.random() * 0.5));
}

/** How often the connection is pinged; a ping unanswered by the next one ends it (and it is opened again). */
export const PING_INTERVAL_MS = 10_000;

/** How long the opening handshake may take: a server that takes the connection but never answers is left for another try. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

export interface EventSocketTiming {
  pingIntervalMs: number;
  handshakeTimeoutMs: number;
  /**
   * The wait before taking the application back from another connection that
   * registered it, growing with each time in a row (two konamis set up with one
   * application name take turns at this pace, not in a busy loop).
   */
  replacedBackoff: Backoff;
}

export const EVENT_SOCKET_TIMING: EventSocketTiming = {
  pingIntervalMs: PING_INTERVAL_MS,
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  replacedBackoff: { initialMs: 1000, maxMs: 60_000 },
};

/** A replacement this long after the previous one counts as the first again. */
const REPLACEMENTS_FORGOTTEN_MS = 5 * 60_000;

/**
 * Events: 'message' (one parsed ARI event), 'down' (the connection was lost;
 * it is being opened again).
 */
export class AriEventSocket extends EventEmitter {
  private socket: WebSocket | undefined;
  private stopped = false;
  private attempt = 0;
  /** The wait before the next opening, when it is not the usual backoff. */
  private nextDelay: number | undefined;
  private replacements = 0;
  private lastReplaced = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly address: string;
  private readonly auth: string;

  /**
   * `opened` runs each time the connection is up (the first time and after
   * every reconnection) before it counts as up.
   */
  constructor(
    settings: AriEventSettings,
    private readonly log: Logger,
    private readonly backoff: Backoff,
    private readonly opened: () => Promise<void>,
    private readonly timing: EventSocketTiming = EVENT_SOCKET_TIMING,
  ) {
    super();
    const u = new URL(settings.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`ARI_URL: ${u.protocol} is not supported`);
    const ws = u.protocol === 'https:' ? 'wss:' : 'ws:';
    // Only konami's own application's events, and the credentials in a header, never in the address.
    this.address = `${ws}//${u.host}${u.pathname.replace(/\/+$/, '')}/ari/events?app=${encodeURIComponent(settings.app)}&subscribeAll=false`;
    this.auth = `Basic ${Buffer.from(`${settings.username}:${settings.password}`).toString('base64')}`;
  }

  /** Resolves once the connection is up the first time (retrying meanwhile, as after a drop), or stopped. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.once('up', resolve);
      this.once('stopped', resolve);
      this.open();
    });
  }

  /**
   * Asterisk gave the application to another connection: this one is closed
   * (it is no longer up) and opened again, which takes the application back,
   * after a wait that grows while it keeps happening. Returns that wait (ms).
   */
  replaced(): number {
    const now = Date.now();
    if (now - this.lastReplaced > REPLACEMENTS_FORGOTTEN_MS) this.replacements = 0;
    this.lastReplaced = now;
    const delay = backoffDelay(this.replacements++, this.timing.replacedBackoff);
    this.nextDelay = delay;
    this.socket?.terminate();
    return delay;
  }

  stop(): void {
    this.stopped = true;
    this.emit('stopped');
    clearTimeout(this.retry);
    this.socket?.terminate();
    this.socket = undefined;
  }

  /** Emits 'up' or 'down': a listener that throws is logged, and the reconnecting goes on. */
  private tell(what: 'up' | 'down'): void {
    try {
      this.emit(what);
    } catch (err) {
      this.log.error({ err }, `a listener of the event connection's "${what}" failed`);
    }
  }

  private open(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.address, {
      headers: { authorization: this.auth }, perMessageDeflate: false, handshakeTimeout: this.timing.handshakeTimeoutMs,
    });
    this.socket = socket;
    // Only the current socket speaks: a late message from one that was replaced or stopped is not konami's any more.
    const current = () => socket === this.socket && !this.stopped;
    let up = false;
    let answered = true;
    let pinger: NodeJS.Timeout | undefined;
    socket.on('open', () => {
      void this.opened().catch((err: Error) => this.log.warn({ reason: err.message }, 'ARI event connection set-up incomplete')).then(() => {
        if (!current() || socket.readyState !== WebSocket.OPEN) return;
        up = true;
        this.attempt = 0;
        this.tell('up');
      });
      pinger = setInterval(() => {
        if (!answered) {
          this.log.warn('ARI event connection did not answer a ping: closing it');
          socket.terminate();
          return;
        }
        answered = false;
        socket.ping();
      }, this.timing.pingIntervalMs);
    });
    socket.on('pong', () => {
      answered = true;
    });
    socket.on('message', (data: Buffer) => {
      if (!current()) return;
      let event: unknown;
      try {
        event = JSON.parse(data.toString('utf8'));
      } catch {
        this.log.warn({ bytes: data.length }, 'ARI sent an event that is not JSON: ignored');
        return;
      }
      try {
        this.emit('message', event);
      } catch (err) {
        // One event's fault must not end the connection every call depends on.
        this.log.error({ err, type: (event as { type?: unknown } | null)?.type }, 'an ARI event could not be handled');
      }
    });
    socket.on('error', (err: Error) => {
      if (!up) this.log.debug({ reason: err.message }, 'ARI event connection failed');
    });
    socket.on('close', () => {
      clearInterval(pinger);
      if (!current()) return;
      if (up) {
        this.log.warn('ARI event connection lost; reconnecting');
        this.tell('down');
      }
      const delay = this.nextDelay ?? backoffDelay(this.attempt++, this.backoff);
      this.nextDelay = undefined;
      if (!up) this.log.warn({ attempt: this.attempt, retry_in_ms: delay }, 'ARI event connection not opened; retrying');
      this.retry = setTimeout(() => this.open(), delay);
    });
  }
}
