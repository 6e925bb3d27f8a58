// The ARI connection: probes ARI with a plain HTTP request first (a refused
// password stops the start, naming it), keeps the application's event
// websocket up for as long as it takes, with only the events konami handles
// (Asterisk's event filter), and performs the Ari port's operations as plain
// REST requests over kept-alive connections. Every call's events and requests
// pass here: ari-client's per-request and per-event machinery was most of
// konami's CPU per call.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { AriError, type AddChannel, type Ari, type CreateChannel, type DtmfTiming } from './ari.js';
import { AriRest, seg } from './ari-rest.js';
import { AriEventSocket, backoffDelay, type Backoff } from './ari-events.js';
import { asKnownEvent, KNOWN_EVENTS, type AriEvent, type BridgeSnapshot, type ChannelSnapshot, type PlaybackSnapshot } from './ari-types.js';

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

export { backoffDelay } from './ari-events.js';

/** How long one ARI request may take before it counts as failed. */
export const REQUEST_TIMEOUT_MS = 8000;

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
  private events: AriEventSocket | undefined;
  private restClient: AriRest | undefined;
  private isConnected = false;
  private readonly stopping = new AbortController();
  /** While false, nothing is sent to Asterisk and no event is passed on (distributed mode: the lease). */
  private mayAct: () => boolean = () => true;

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

  /** Acts only while `check` holds: checked before every request and every event. */
  onlyWhile(check: () => boolean): void {
    this.mayAct = check;
  }

  /**
   * Resolves once the app is registered with Asterisk. Waits (with a log line
   * per attempt) while ARI is unreachable; rejects at once on refused credentials.
   */
  async start(): Promise<void> {
    const version = await this.untilReachable();
    if (this.stopping.signal.aborted) return;
    const { url, username, password, app } = this.settings;
    this.restClient = new AriRest({ url, username, password, timeoutMs: REQUEST_TIMEOUT_MS });
    const events = new AriEventSocket({ url, username, password, app }, this.log, this.backoff, () => this.opened());
    this.events = events;
    events.on('message', (raw: { type?: string }) => this.onRaw(raw));
    events.on('up', () => this.setConnected(true));
    events.on('down', () => this.setConnected(false));
    await events.start();
    if (this.stopping.signal.aborted) return;
    this.log.info({ ari: url, app, asterisk: version }, 'connected to ARI');
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.events?.stop();
    this.restClient?.close();
    this.setConnected(false);
  }

  /**
   * Each time the event connection opens: Asterisk is asked to send only the
   * events konami handles (it would send every variable set and dialplan step).
   * Without the filter konami works the same, at more cost: so a failure is
   * only logged.
   */
  private async opened(): Promise<void> {
    const allowed = [...KNOWN_EVENTS, 'ApplicationReplaced'].map((type) => ({ type }));
    try {
      await this.rest.call('applications.filter', 'PUT', `/applications/${seg(this.settings.app)}/eventFilter`, {}, { allowed });
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, 'ARI event filter not set: every event type will be received');
    }
  }

  private setConnected(up: boolean): void {
    if (up === this.isConnected) return;
    this.isConnected = up;
    this.emit(up ? 'connected' : 'disconnected');
  }

  private onRaw(raw: { type?: string; application?: string }): void {
    if (!this.mayAct()) return;
    if (raw.type === 'ApplicationReplaced') {
      // Another connection registered konami's application name (a second konami set up with
      // the same ARI_APP, say): its calls' events go there now. This one is not ready until it
      // takes the name back, after a wait that grows while the other keeps taking it.
      const retryMs = this.events?.replaced();
      this.log.error({ app: this.settings.app, retry_in_ms: retryMs },
        'another ARI connection registered the same application name: not ready; taking it back after a wait');
      return;
    }
    const e = asKnownEvent(raw);
    if (e) this.emit('event', e);
  }

  private async untilReachable(): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await probeAri(this.settings);
      } catch (err) {
        if (err instanceof AriAuthError || this.stopping.signal.aborted) throw err;
        const delay = backoffDelay(attempt, this.backoff);
        this.log.warn({ attempt: attempt + 1, retry_in_ms: delay, reason: (err as Error).message }, 'ARI not available (start); retrying');
        await sleep(delay, this.stopping.signal);
      }
    }
  }

  /** ARI's REST operations. */
  private get rest(): AriRest {
    if (!this.mayAct()) throw new AriError('ari', 'this instance no longer drives this Asterisk (lease lost)', undefined);
    if (!this.restClient) throw new AriError('ari', 'not connected to ARI', undefined);
    return this.restClient;
  }

  createChannel(p: CreateChannel): Promise<ChannelSnapshot> {
    const { variables, ...query } = p;
    return this.rest.call('channels.create', 'POST', '/channels/create', { ...query }, variables ? { variables } : undefined);
  }
  async dial(channelId: string, p: { caller?: string; timeout?: number }): Promise<void> {
    await this.rest.call('channels.dial', 'POST', `/channels/${seg(channelId)}/dial`, p);
  }
  async answer(channelId: string): Promise<void> {
    await this.rest.call('channels.answer', 'POST', `/channels/${seg(channelId)}/answer`);
  }
  async ring(channelId: string): Promise<void> {
    await this.rest.call('channels.ring', 'POST', `/channels/${seg(channelId)}/ring`);
  }
  async ringStop(channelId: string): Promise<void> {
    await this.rest.call('channels.ringStop', 'DELETE', `/channels/${seg(channelId)}/ring`);
  }
  async hangup(channelId: string, cause?: number): Promise<void> {
    await this.rest.call('channels.hangup', 'DELETE', `/channels/${seg(channelId)}`, { reason_code: cause });
  }
  async startMoh(channelId: string, mohClass?: string): Promise<void> {
    await this.rest.call('channels.startMoh', 'POST', `/channels/${seg(channelId)}/moh`, { mohClass });
  }
  async stopMoh(channelId: string): Promise<void> {
    await this.rest.call('channels.stopMoh', 'DELETE', `/channels/${seg(channelId)}/moh`);
  }
  async play(channelId: string, media: string | string[], playbackId?: string): Promise<void> {
    const m = Array.isArray(media) ? media.join(',') : media;
    const path = playbackId ? `/channels/${seg(channelId)}/play/${seg(playbackId)}` : `/channels/${seg(channelId)}/play`;
    await this.rest.call('channels.play', 'POST', path, { media: m });
  }
  async stopPlayback(playbackId: string): Promise<void> {
    await this.rest.call('playbacks.stop', 'DELETE', `/playbacks/${seg(playbackId)}`);
  }
  getPlayback(playbackId: string): Promise<PlaybackSnapshot> {
    return this.rest.call('playbacks.get', 'GET', `/playbacks/${seg(playbackId)}`);
  }
  async sendDtmf(channelId: string, dtmf: string, timing: DtmfTiming = {}): Promise<void> {
    await this.rest.call('channels.sendDTMF', 'POST', `/channels/${seg(channelId)}/dtmf`, { dtmf, ...timing });
  }
  getChannel(channelId: string): Promise<ChannelSnapshot> {
    return this.rest.call('channels.get', 'GET', `/channels/${seg(channelId)}`);
  }
  listChannels(): Promise<ChannelSnapshot[]> {
    return this.rest.call('channels.list', 'GET', '/channels');
  }
  createBridge(p: { bridgeId: string; type: string; name?: string }): Promise<BridgeSnapshot> {
    return this.rest.call('bridges.create', 'POST', '/bridges', { ...p });
  }
  async addChannel(bridgeId: string, channelIds: string[], opts: AddChannel = {}): Promise<void> {
    await this.rest.call('bridges.addChannel', 'POST', `/bridges/${seg(bridgeId)}/addChannel`, { channel: channelIds.join(','), ...opts });
  }
  async removeChannel(bridgeId: string, channelIds: string[]): Promise<void> {
    await this.rest.call('bridges.removeChannel', 'POST', `/bridges/${seg(bridgeId)}/removeChannel`, { channel: channelIds.join(',') });
  }
  async destroyBridge(bridgeId: string): Promise<void> {
    await this.rest.call('bridges.destroy', 'DELETE', `/bridges/${seg(bridgeId)}`);
  }
  async startBridgeMoh(bridgeId: string, mohClass?: string): Promise<void> {
    await this.rest.call('bridges.startMoh', 'POST', `/bridges/${seg(bridgeId)}/moh`, { mohClass });
  }
  async stopBridgeMoh(bridgeId: string): Promise<void> {
    await this.rest.call('bridges.stopMoh', 'DELETE', `/bridges/${seg(bridgeId)}/moh`);
  }
  listBridges(): Promise<BridgeSnapshot[]> {
    return this.rest.call('bridges.list', 'GET', '/bridges');
  }
}

export type { AriEvent };
