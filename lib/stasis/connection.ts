// The ARI connection: probes ARI with a plain HTTP request before handing over
// to ari-client (which kills the process on a bad password), keeps the event
// websocket up for as long as it takes (ari-client alone gives up after about
// 40 s), and adapts ari-client's generated methods to the typed Ari port.
import { EventEmitter } from 'node:events';
import ariClient from 'ari-client';
import type { Logger } from '../log.js';
import { AriError, statusFromMessage, type AddChannel, type Ari, type CreateChannel, type DtmfTiming } from './ari.js';
import { asKnownEvent, type AriEvent, type BridgeSnapshot, type ChannelSnapshot, type PlaybackSnapshot } from './ari-types.js';

export class AriAuthError extends Error {
  constructor(url: string, status: number) {
    super(`ARI at ${url} refused ARI_USERNAME/ARI_PASSWORD (HTTP ${status}): check the user in ari.conf`);
    this.name = 'AriAuthError';
  }
}

export class AriUnreachableError extends Error {
  constructor(url: string, why: string) {
    super(`ARI at ${url} is not reachable: ${why}`);
    this.name = 'AriUnreachableError';
  }
}

export interface AriSettings {
  url: string;
  username: string;
  password: string;
  app: string;
}

/** Asks ARI who it is: resolves with Asterisk's version, or says why not. */
export async function probeAri(s: Pick<AriSettings, 'url' | 'username' | 'password'>, timeoutMs = 3000): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${s.url}/ari/asterisk/info?only=system`, {
      headers: { authorization: `Basic ${Buffer.from(`${s.username}:${s.password}`).toString('base64')}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new AriUnreachableError(s.url, cause);
  }
  if (res.status === 401 || res.status === 403) throw new AriAuthError(s.url, res.status);
  if (res.status === 404) throw new AriUnreachableError(s.url, 'HTTP 404: ARI is not enabled there yet (http.conf, ari.conf)');
  if (!res.ok) throw new AriUnreachableError(s.url, `HTTP ${res.status}`);
  const body = (await res.json()) as { system?: { version?: string } };
  return body.system?.version ?? 'unknown';
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, b: Backoff): number {
  const exp = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(exp * (0.75 + Math.random() * 0.5));
}

// ari-client builds its methods at run time from ARI's swagger; this is the
// shape konami calls them with.
type Op = (params: Record<string, unknown>) => Promise<unknown>;
interface RawClient extends EventEmitter {
  channels: Record<string, Op>;
  bridges: Record<string, Op>;
  playbacks: Record<string, Op>;
  start(app: string): Promise<void>;
  stop(): void;
}

/** How long one ARI request may take before it counts as failed. */
export const REQUEST_TIMEOUT_MS = 8000;

function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  try {
    const parsed = JSON.parse(text) as { message?: string; error?: string };
    return parsed.message ?? parsed.error ?? text;
  } catch {
    return text;
  }
}

/**
 * ari-client's swagger library prints a deprecation notice with console.log
 * while it loads ARI's API description; on stdout it would break the JSON log.
 */
/* eslint-disable no-console -- this function exists to filter console.log */
async function withoutSwaggerNotice<T>(load: () => Promise<T>): Promise<T> {
  const original = console.log;
  console.log = (...args: unknown[]) => {
    if (!String(args[0]).includes('deprecated version of Swagger')) original(...args);
  };
  try {
    return await load();
  } finally {
    console.log = original;
  }
}
/* eslint-enable no-console */

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Events: 'event' (AriEvent), 'connected' (first time and after every
 * reconnection), 'disconnected'.
 */
export class AriConnection extends EventEmitter implements Ari {
  private client: RawClient | undefined;
  private isConnected = false;
  private readonly stopping = new AbortController();
  private reconnecting = false;

  constructor(
    private readonly settings: AriSettings,
    private readonly log: Logger,
    private readonly backoff: Backoff = { initialMs: 250, maxMs: 10_000 },
  ) {
    super();
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /**
   * Resolves once the app is registered with Asterisk. Waits (with a log line
   * per attempt) while ARI is unreachable; rejects at once on refused credentials.
   */
  async start(): Promise<void> {
    const version = await this.untilReachable('start');
    if (this.stopping.signal.aborted) return;
    const client = (await withoutSwaggerNotice(() =>
      ariClient.connect(this.settings.url, this.settings.username, this.settings.password))) as unknown as RawClient;
    this.client = client;
    client.on('*', (raw: { type?: string }) => this.onRaw(raw));
    client.on('WebSocketConnected', () => this.setConnected(true));
    client.on('WebSocketReconnecting', (err?: Error) => {
      this.setConnected(false);
      this.log.warn({ err: err?.message }, 'ARI event connection lost; reconnecting');
    });
    client.on('WebSocketMaxRetries', () => void this.reconnectForever());
    await client.start(this.settings.app);
    this.log.info({ ari: this.settings.url, app: this.settings.app, asterisk: version }, 'connected to ARI');
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.client) {
      try {
        this.client.stop();
      } catch {
        // the websocket may already be closed
      }
    }
    this.setConnected(false);
  }

  private setConnected(up: boolean): void {
    if (up === this.isConnected) return;
    this.isConnected = up;
    this.emit(up ? 'connected' : 'disconnected');
  }

  private onRaw(raw: { type?: string; application?: string }): void {
    if (raw.type === 'ApplicationReplaced') {
      this.log.error({ app: this.settings.app }, 'another ARI connection registered the same application name');
      return;
    }
    const e = asKnownEvent(raw);
    if (e) this.emit('event', e);
  }

  private async untilReachable(phase: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await probeAri(this.settings);
      } catch (err) {
        if (err instanceof AriAuthError && phase === 'start') throw err;
        if (this.stopping.signal.aborted) throw err;
        const delay = backoffDelay(attempt, this.backoff);
        this.log.warn({ attempt: attempt + 1, retry_in_ms: delay, reason: (err as Error).message }, `ARI not available (${phase}); retrying`);
        await sleep(delay, this.stopping.signal);
      }
    }
  }

  /** After ari-client gave up: wait for ARI, then open the websocket again; never give up. */
  private async reconnectForever(): Promise<void> {
    if (this.reconnecting || this.stopping.signal.aborted || !this.client) return;
    this.reconnecting = true;
    try {
      for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
        try {
          await this.untilReachable('reconnect');
          await this.client.start(this.settings.app);
          this.log.info({ app: this.settings.app }, 'ARI event connection restored');
          return;
        } catch (err) {
          if (this.stopping.signal.aborted) return;
          const delay = backoffDelay(attempt, this.backoff);
          this.log.warn({ retry_in_ms: delay, reason: messageOf(err) }, 'ARI reconnect failed; retrying');
          await sleep(delay, this.stopping.signal);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  private async op<T>(resource: 'channels' | 'bridges' | 'playbacks', name: string, params: Record<string, unknown>): Promise<T> {
    if (!this.client) throw new AriError(`${resource}.${name}`, 'not connected to ARI', undefined);
    const fn = this.client[resource][name];
    if (!fn) throw new AriError(`${resource}.${name}`, 'no such ARI operation', undefined);
    // A request Asterisk never answers must not freeze the call waiting on it.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AriError(`${resource}.${name}`, `no answer within ${REQUEST_TIMEOUT_MS} ms`, 504)), REQUEST_TIMEOUT_MS);
    });
    try {
      return (await Promise.race([fn(params), timeout])) as T;
    } catch (err) {
      if (err instanceof AriError) throw err;
      const message = messageOf(err);
      throw new AriError(`${resource}.${name}`, message, statusFromMessage(message));
    } finally {
      clearTimeout(timer);
    }
  }

  // ari-client answers with resource objects that hold the client itself;
  // ARI's own fields are the enumerable ones not starting with "_".
  private static plain<T>(v: unknown): T {
    const one = (o: unknown): unknown => {
      if (!o || typeof o !== 'object') return o;
      const out: Record<string, unknown> = {};
      for (const [k, val] of Object.entries(o)) if (!k.startsWith('_') && typeof val !== 'function') out[k] = val;
      return out;
    };
    return (Array.isArray(v) ? v.map(one) : one(v)) as T;
  }

  async createChannel(p: CreateChannel): Promise<ChannelSnapshot> {
    const { variables, ...rest } = p;
    return AriConnection.plain(await this.op('channels', 'create', variables ? { ...rest, variables } : { ...rest }));
  }
  async dial(channelId: string, p: { caller?: string; timeout?: number }): Promise<void> {
    await this.op('channels', 'dial', { channelId, ...p });
  }
  async answer(channelId: string): Promise<void> {
    await this.op('channels', 'answer', { channelId });
  }
  async ring(channelId: string): Promise<void> {
    await this.op('channels', 'ring', { channelId });
  }
  async ringStop(channelId: string): Promise<void> {
    await this.op('channels', 'ringStop', { channelId });
  }
  async hangup(channelId: string, cause?: number): Promise<void> {
    await this.op('channels', 'hangup', cause === undefined ? { channelId } : { channelId, reason_code: String(cause) });
  }
  async startMoh(channelId: string, mohClass?: string): Promise<void> {
    await this.op('channels', 'startMoh', mohClass ? { channelId, mohClass } : { channelId });
  }
  async stopMoh(channelId: string): Promise<void> {
    await this.op('channels', 'stopMoh', { channelId });
  }
  async play(channelId: string, media: string | string[], playbackId?: string): Promise<void> {
    const m = Array.isArray(media) ? media.join(',') : media;
    if (playbackId) await this.op('channels', 'playWithId', { channelId, playbackId, media: m });
    else await this.op('channels', 'play', { channelId, media: m });
  }
  async stopPlayback(playbackId: string): Promise<void> {
    await this.op('playbacks', 'stop', { playbackId });
  }
  async getPlayback(playbackId: string): Promise<PlaybackSnapshot> {
    return AriConnection.plain(await this.op('playbacks', 'get', { playbackId }));
  }
  async sendDtmf(channelId: string, dtmf: string, timing: DtmfTiming = {}): Promise<void> {
    await this.op('channels', 'sendDTMF', { channelId, dtmf, ...timing });
  }
  async getChannel(channelId: string): Promise<ChannelSnapshot> {
    return AriConnection.plain(await this.op('channels', 'get', { channelId }));
  }
  async listChannels(): Promise<ChannelSnapshot[]> {
    return AriConnection.plain(await this.op('channels', 'list', {}));
  }
  async createBridge(p: { bridgeId: string; type: string; name?: string }): Promise<BridgeSnapshot> {
    return AriConnection.plain(await this.op('bridges', 'create', { ...p }));
  }
  async addChannel(bridgeId: string, channelIds: string[], opts: AddChannel = {}): Promise<void> {
    await this.op('bridges', 'addChannel', { bridgeId, channel: channelIds.join(','), ...opts });
  }
  async removeChannel(bridgeId: string, channelIds: string[]): Promise<void> {
    await this.op('bridges', 'removeChannel', { bridgeId, channel: channelIds.join(',') });
  }
  async destroyBridge(bridgeId: string): Promise<void> {
    await this.op('bridges', 'destroy', { bridgeId });
  }
  async startBridgeMoh(bridgeId: string, mohClass?: string): Promise<void> {
    await this.op('bridges', 'startMoh', mohClass ? { bridgeId, mohClass } : { bridgeId });
  }
  async stopBridgeMoh(bridgeId: string): Promise<void> {
    await this.op('bridges', 'stopMoh', { bridgeId });
  }
  async listBridges(): Promise<BridgeSnapshot[]> {
    return AriConnection.plain(await this.op('bridges', 'list', {}));
  }
}

export type { AriEvent };
