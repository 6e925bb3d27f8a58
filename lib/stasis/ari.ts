// The ARI port: the only operations konami's call logic performs on Asterisk.
// The adapter over ARI's REST requests and event websocket lives in connection.ts; tests use a fake.
import type { AriEvent, BridgeSnapshot, ChannelSnapshot, PlaybackSnapshot } from './ari-types.js';

export interface CreateChannel {
  endpoint: string;
  app: string;
  appArgs?: string;
  channelId: string;
  otherChannelId?: string;
  originator?: string;
  variables?: Record<string, string>;
  /** Codecs for a channel without an originator, e.g. "ulaw" (ARI's `formats`). */
  formats?: string;
}

export interface AddChannel {
  absorbDTMF?: boolean;
  mute?: boolean;
  role?: string;
  inhibitConnectedLineUpdates?: boolean;
}

export interface DtmfTiming {
  before?: number;
  between?: number;
  duration?: number;
  after?: number;
}

export interface Ari {
  createChannel(p: CreateChannel): Promise<ChannelSnapshot>;
  dial(channelId: string, p: { caller?: string; timeout?: number }): Promise<void>;
  answer(channelId: string): Promise<void>;
  ring(channelId: string): Promise<void>;
  ringStop(channelId: string): Promise<void>;
  /** Hangs up with a Q.850 cause (16 normal, 17 busy, 19 no answer, 21 rejected, 34 congestion...). */
  hangup(channelId: string, cause?: number): Promise<void>;
  startMoh(channelId: string, mohClass?: string): Promise<void>;
  stopMoh(channelId: string): Promise<void>;
  play(channelId: string, media: string | string[], playbackId?: string): Promise<void>;
  stopPlayback(playbackId: string): Promise<void>;
  getPlayback(playbackId: string): Promise<PlaybackSnapshot>;
  sendDtmf(channelId: string, dtmf: string, timing?: DtmfTiming): Promise<void>;
  getChannel(channelId: string): Promise<ChannelSnapshot>;
  listChannels(): Promise<ChannelSnapshot[]>;

  createBridge(p: { bridgeId: string; type: string; name?: string }): Promise<BridgeSnapshot>;
  addChannel(bridgeId: string, channelIds: string[], opts?: AddChannel): Promise<void>;
  removeChannel(bridgeId: string, channelIds: string[]): Promise<void>;
  destroyBridge(bridgeId: string): Promise<void>;
  startBridgeMoh(bridgeId: string, mohClass?: string): Promise<void>;
  stopBridgeMoh(bridgeId: string): Promise<void>;
  listBridges(): Promise<BridgeSnapshot[]>;
}

export type AriEventHandler = (e: AriEvent) => void;

/** An ARI failure, with ARI's HTTP status when there was an answer. */
export class AriError extends Error {
  constructor(
    readonly operation: string,
    message: string,
    readonly status: number | undefined,
  ) {
    super(`${operation}: ${message}`);
    this.name = 'AriError';
  }

  /** The channel or bridge is gone or no longer ours: the step has nothing left to do. */
  get gone(): boolean {
    return this.status === 404 || this.status === 409 || this.status === 422;
  }
}

/** Runs an ARI step whose target may already be gone; only other failures throw. */
export async function tolerateGone(step: Promise<unknown>): Promise<boolean> {
  try {
    await step;
    return true;
  } catch (err) {
    if (err instanceof AriError && err.gone) return false;
    throw err;
  }
}
