// An in-memory ARI for unit tests: it records every command, keeps a model of
// channels and bridges, and lets a test deliver the events Asterisk would send.
// It never sends events by itself, so a test controls every ordering (races
// included) and asserts on the commands konami issued.
import type { AddChannel, Ari, CreateChannel, DtmfTiming } from '../../lib/stasis/ari.js';
import { AriError } from '../../lib/stasis/ari.js';
import type {
  AriEvent, BridgeSnapshot, CallerId, ChannelSnapshot, ChannelState, PlaybackSnapshot,
} from '../../lib/stasis/ari-types.js';

export interface Command {
  op: string;
  target: string;
  args: Record<string, unknown>;
}

export interface FakeChannel {
  snapshot: ChannelSnapshot;
  moh: boolean;
  ringing: boolean;
  dialled: boolean;
  hungUp?: number;
  dtmfSent: string;
}

export interface FakeBridge {
  snapshot: BridgeSnapshot;
  moh: boolean;
}

export function channelSnapshot(id: string, opts: Partial<ChannelSnapshot> & { exten?: string } = {}): ChannelSnapshot {
  return {
    id,
    name: opts.name ?? `PJSIP/${id}`,
    state: opts.state ?? 'Up',
    caller: opts.caller ?? { name: '', number: '' },
    connected: opts.connected ?? { name: '', number: '' },
    dialplan: opts.dialplan ?? { context: 'konami-entry', exten: opts.exten ?? '2000', priority: 1 },
    creationtime: opts.creationtime ?? new Date().toISOString(),
  };
}

export class FakeAri implements Ari {
  readonly commands: Command[] = [];
  readonly channels = new Map<string, FakeChannel>();
  readonly bridges = new Map<string, FakeBridge>();
  readonly playbacks = new Map<string, PlaybackSnapshot>();
  /** Operations that fail: op name -> error factory (consumed once unless sticky). */
  private readonly failures = new Map<string, { err: () => Error; sticky: boolean }>();
  private readonly pending = new Map<string, Promise<void>>();

  /** Adds a channel that exists in Asterisk (a caller in the dialplan, say). */
  addChannel_(id: string, opts: Partial<ChannelSnapshot> & { exten?: string } = {}): ChannelSnapshot {
    const snapshot = channelSnapshot(id, opts);
    this.channels.set(id, { snapshot, moh: false, ringing: false, dialled: false, dtmfSent: '' });
    return snapshot;
  }

  /** The next call of `op` (or every call if sticky) rejects with this ARI message. */
  failNext(op: string, message: string, status?: number, sticky = false): void {
    this.failures.set(op, { err: () => new AriError(op, message, status), sticky });
  }

  /** The next call of `op` waits until the returned function is called (to stage races). */
  hold(op: string): () => void {
    let release!: () => void;
    this.pending.set(op, new Promise<void>((r) => (release = r)));
    return release;
  }

  ops(op?: string): Command[] {
    return op ? this.commands.filter((c) => c.op === op) : this.commands;
  }

  opNames(): string[] {
    return this.commands.map((c) => c.op);
  }

  private async record(op: string, target: string, args: Record<string, unknown> = {}): Promise<void> {
    this.commands.push({ op, target, args });
    const gate = this.pending.get(op);
    if (gate) {
      this.pending.delete(op);
      await gate;
    }
    const f = this.failures.get(op);
    if (f) {
      if (!f.sticky) this.failures.delete(op);
      throw f.err();
    }
  }

  private channel(op: string, id: string): FakeChannel {
    const c = this.channels.get(id);
    if (!c || c.hungUp !== undefined) throw new AriError(op, 'Channel not found', 404);
    return c;
  }

  private bridge(op: string, id: string): FakeBridge {
    const b = this.bridges.get(id);
    if (!b) throw new AriError(op, 'Bridge not found', 404);
    return b;
  }

  async createChannel(p: CreateChannel): Promise<ChannelSnapshot> {
    await this.record('createChannel', p.channelId, { ...p });
    if (this.channels.has(p.channelId)) throw new AriError('createChannel', 'Channel with given unique ID already exists', 409);
    const caller: CallerId = {
      name: p.variables?.['CALLERID(name)'] ?? '',
      number: p.variables?.['CALLERID(num)'] ?? '',
    };
    return this.addChannel_(p.channelId, { state: 'Down', caller, name: `${p.endpoint}-fake` });
  }

  async dial(channelId: string, p: { caller?: string; timeout?: number }): Promise<void> {
    await this.record('dial', channelId, { ...p });
    this.channel('dial', channelId).dialled = true;
  }

  async answer(channelId: string): Promise<void> {
    await this.record('answer', channelId);
    this.channel('answer', channelId).snapshot.state = 'Up';
  }

  async ring(channelId: string): Promise<void> {
    await this.record('ring', channelId);
    this.channel('ring', channelId).ringing = true;
  }

  async ringStop(channelId: string): Promise<void> {
    await this.record('ringStop', channelId);
    this.channel('ringStop', channelId).ringing = false;
  }

  async hangup(channelId: string, cause?: number): Promise<void> {
    await this.record('hangup', channelId, { cause });
    const c = this.channel('hangup', channelId);
    c.hungUp = cause ?? 16;
    for (const [id, p] of this.playbacks) if (p.target_uri === `channel:${channelId}`) this.playbacks.delete(id);
    for (const b of this.bridges.values()) b.snapshot.channels = b.snapshot.channels.filter((id) => id !== channelId);
  }

  async startMoh(channelId: string, mohClass?: string): Promise<void> {
    await this.record('startMoh', channelId, { mohClass });
    this.channel('startMoh', channelId).moh = true;
  }

  async stopMoh(channelId: string): Promise<void> {
    await this.record('stopMoh', channelId);
    this.channel('stopMoh', channelId).moh = false;
  }

  async play(channelId: string, media: string | string[], playbackId?: string): Promise<void> {
    await this.record('play', channelId, { media, playbackId });
    this.channel('play', channelId);
    const id = playbackId ?? `pb-${this.commands.length}`;
    const m = Array.isArray(media) ? media.join(',') : media;
    // Tones play until stopped; sounds end by themselves (a test may deliver PlaybackFinished).
    if (m.startsWith('tone:')) this.playbacks.set(id, { id, media_uri: m, target_uri: `channel:${channelId}`, state: 'playing' });
  }

  /** Playbacks still playing, by channel: what each party hears from konami. */
  playing(channelId: string): string[] {
    return [...this.playbacks.values()].filter((p) => p.target_uri === `channel:${channelId}`).map((p) => p.media_uri);
  }

  async stopPlayback(playbackId: string): Promise<void> {
    await this.record('stopPlayback', playbackId);
    const p = this.playbacks.get(playbackId);
    if (!p) throw new AriError('stopPlayback', 'Playback not found', 404);
    this.playbacks.delete(playbackId);
  }

  async getPlayback(playbackId: string): Promise<PlaybackSnapshot> {
    await this.record('getPlayback', playbackId);
    const p = this.playbacks.get(playbackId);
    if (!p) throw new AriError('getPlayback', 'Playback not found', 404);
    return { ...p };
  }

  async sendDtmf(channelId: string, dtmf: string, timing?: DtmfTiming): Promise<void> {
    await this.record('sendDtmf', channelId, { dtmf, ...timing });
    this.channel('sendDtmf', channelId).dtmfSent += dtmf;
  }

  async getChannel(channelId: string): Promise<ChannelSnapshot> {
    await this.record('getChannel', channelId);
    return { ...this.channel('getChannel', channelId).snapshot };
  }

  async listChannels(): Promise<ChannelSnapshot[]> {
    await this.record('listChannels', '');
    return [...this.channels.values()].filter((c) => c.hungUp === undefined).map((c) => ({ ...c.snapshot }));
  }

  async createBridge(p: { bridgeId: string; type: string; name?: string }): Promise<BridgeSnapshot> {
    await this.record('createBridge', p.bridgeId, { ...p });
    const snapshot: BridgeSnapshot = {
      id: p.bridgeId, technology: 'simple_bridge', bridge_type: 'mixing', bridge_class: 'stasis',
      creator: 'Stasis', name: p.name ?? '', channels: [],
    };
    this.bridges.set(p.bridgeId, { snapshot, moh: false });
    return { ...snapshot };
  }

  async addChannel(bridgeId: string, channelIds: string[], opts?: AddChannel): Promise<void> {
    await this.record('addChannel', bridgeId, { channels: [...channelIds], ...opts });
    const b = this.bridge('addChannel', bridgeId);
    for (const id of channelIds) {
      this.channel('addChannel', id);
      for (const other of this.bridges.values()) other.snapshot.channels = other.snapshot.channels.filter((c) => c !== id);
      b.snapshot.channels.push(id);
    }
  }

  async removeChannel(bridgeId: string, channelIds: string[]): Promise<void> {
    await this.record('removeChannel', bridgeId, { channels: [...channelIds] });
    const b = this.bridge('removeChannel', bridgeId);
    for (const id of channelIds) {
      if (!b.snapshot.channels.includes(id)) throw new AriError('removeChannel', 'Channel not in this bridge', 422);
    }
    b.snapshot.channels = b.snapshot.channels.filter((c) => !channelIds.includes(c));
  }

  async destroyBridge(bridgeId: string): Promise<void> {
    await this.record('destroyBridge', bridgeId);
    this.bridge('destroyBridge', bridgeId);
    this.bridges.delete(bridgeId);
  }

  async startBridgeMoh(bridgeId: string, mohClass?: string): Promise<void> {
    await this.record('startBridgeMoh', bridgeId, { mohClass });
    this.bridge('startBridgeMoh', bridgeId).moh = true;
  }

  async stopBridgeMoh(bridgeId: string): Promise<void> {
    await this.record('stopBridgeMoh', bridgeId);
    this.bridge('stopBridgeMoh', bridgeId).moh = false;
  }

  async listBridges(): Promise<BridgeSnapshot[]> {
    await this.record('listBridges', '');
    return [...this.bridges.values()].map((b) => ({ ...b.snapshot, channels: [...b.snapshot.channels] }));
  }

  /** Channels konami left alive (not hung up). */
  liveChannels(): string[] {
    return [...this.channels.entries()].filter(([, c]) => c.hungUp === undefined).map(([id]) => id);
  }
}

// Event builders: what Asterisk sends, with only the fields konami reads.
const base = { application: 'konami', timestamp: '2026-01-01T00:00:00.000Z' };

export const ev = {
  stasisStart(channel: ChannelSnapshot, args: string[] = []): AriEvent {
    return { ...base, type: 'StasisStart', args, channel };
  },
  stasisEnd(channel: ChannelSnapshot): AriEvent {
    return { ...base, type: 'StasisEnd', channel };
  },
  state(channel: ChannelSnapshot, state: ChannelState): AriEvent {
    return { ...base, type: 'ChannelStateChange', channel: { ...channel, state } };
  },
  destroyed(channel: ChannelSnapshot, cause = 16): AriEvent {
    return { ...base, type: 'ChannelDestroyed', channel, cause, cause_txt: '' };
  },
  hangupRequest(channel: ChannelSnapshot, cause?: number): AriEvent {
    return { ...base, type: 'ChannelHangupRequest', channel, cause };
  },
  dtmf(channel: ChannelSnapshot, digit: string, duration_ms = 100): AriEvent {
    return { ...base, type: 'ChannelDtmfReceived', channel, digit, duration_ms };
  },
  playbackFinished(id: string, channelId: string, media = ''): AriEvent {
    return { ...base, type: 'PlaybackFinished', playback: { id, media_uri: media, target_uri: `channel:${channelId}`, state: 'done' } };
  },
  dial(peer: ChannelSnapshot, dialstatus: string, caller?: ChannelSnapshot): AriEvent {
    return { ...base, type: 'Dial', peer, caller, dialstatus };
  },
};
