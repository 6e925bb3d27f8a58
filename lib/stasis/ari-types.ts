// The parts of ARI's data model that konami uses. Field names are ARI's.

export interface CallerId {
  name: string;
  number: string;
}

export type ChannelState =
  | 'Down' | 'Rsrved' | 'OffHook' | 'Dialing' | 'Ring' | 'Ringing' | 'Up' | 'Busy' | 'Dialing Offhook' | 'Pre-ring'
  | 'Unknown';

export interface ChannelSnapshot {
  id: string;
  name: string;
  state: ChannelState;
  caller: CallerId;
  connected: CallerId;
  dialplan: { context: string; exten: string; priority: number; app_name?: string; app_data?: string };
  creationtime: string;
  language?: string;
}

export interface BridgeSnapshot {
  id: string;
  technology: string;
  bridge_type: string;
  bridge_class: string;
  creator: string;
  name: string;
  channels: string[];
}

interface Base {
  application: string;
  timestamp: string;
}

export interface StasisStart extends Base {
  type: 'StasisStart';
  args: string[];
  channel: ChannelSnapshot;
  replace_channel?: ChannelSnapshot;
}
export interface StasisEnd extends Base {
  type: 'StasisEnd';
  channel: ChannelSnapshot;
}
export interface ChannelStateChange extends Base {
  type: 'ChannelStateChange';
  channel: ChannelSnapshot;
}
export interface ChannelDestroyed extends Base {
  type: 'ChannelDestroyed';
  channel: ChannelSnapshot;
  cause: number;
  cause_txt: string;
}
export interface ChannelHangupRequest extends Base {
  type: 'ChannelHangupRequest';
  channel: ChannelSnapshot;
  cause?: number;
  soft?: boolean;
}
export interface ChannelDtmfReceived extends Base {
  type: 'ChannelDtmfReceived';
  channel: ChannelSnapshot;
  digit: string;
  duration_ms: number;
}
export interface Dial extends Base {
  type: 'Dial';
  peer: ChannelSnapshot;
  caller?: ChannelSnapshot;
  dialstatus: string;
  dialstring?: string;
}
export interface ChannelEnteredBridge extends Base {
  type: 'ChannelEnteredBridge';
  bridge: BridgeSnapshot;
  channel: ChannelSnapshot;
}
export interface ChannelLeftBridge extends Base {
  type: 'ChannelLeftBridge';
  bridge: BridgeSnapshot;
  channel: ChannelSnapshot;
}
export interface BridgeDestroyed extends Base {
  type: 'BridgeDestroyed';
  bridge: BridgeSnapshot;
}
export interface PlaybackSnapshot {
  id: string;
  media_uri: string;
  /** "channel:<id>" or "bridge:<id>". */
  target_uri: string;
  state: 'queued' | 'playing' | 'continuing' | 'done' | 'failed' | string;
}
export interface PlaybackEvent extends Base {
  type: 'PlaybackStarted' | 'PlaybackFinished';
  playback: PlaybackSnapshot;
}
export interface OtherEvent extends Base {
  type: 'Other';
  original: string;
}

export type AriEvent =
  | StasisStart | StasisEnd | ChannelStateChange | ChannelDestroyed | ChannelHangupRequest | ChannelDtmfReceived
  | Dial | ChannelEnteredBridge | ChannelLeftBridge | BridgeDestroyed | PlaybackEvent;

/** The event types konami handles (and asks Asterisk for). */
export const KNOWN_EVENTS: readonly string[] = [
  'StasisStart', 'StasisEnd', 'ChannelStateChange', 'ChannelDestroyed', 'ChannelHangupRequest', 'ChannelDtmfReceived',
  'Dial', 'ChannelEnteredBridge', 'ChannelLeftBridge', 'BridgeDestroyed', 'PlaybackStarted', 'PlaybackFinished',
];
const KNOWN = new Set(KNOWN_EVENTS);

/** Narrows a raw event from the websocket to the ones konami handles. */
export function asKnownEvent(raw: { type?: unknown }): AriEvent | undefined {
  return typeof raw.type === 'string' && KNOWN.has(raw.type) ? (raw as AriEvent) : undefined;
}

/** The channel ids an event concerns, in the order a router should try them. */
export function channelIdsOf(e: AriEvent): string[] {
  switch (e.type) {
    case 'Dial':
      return e.caller ? [e.peer.id, e.caller.id] : [e.peer.id];
    case 'PlaybackStarted':
    case 'PlaybackFinished':
      return e.playback.target_uri.startsWith('channel:') ? [e.playback.target_uri.slice('channel:'.length)] : [];
    case 'BridgeDestroyed':
      return [];
    default:
      return [e.channel.id];
  }
}
