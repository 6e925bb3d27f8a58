// Call recovery: how konami takes calls back after it lost sight of them.
// Started again (after a crash or an upgrade), reconnected to ARI, or taking
// over another instance's Asterisk from the shared journal: one path for all.
// The kept records become calls again; then each call is compared with what
// Asterisk reports now (the picture), and every difference is played as the
// event konami missed, through the same handlers and the transfer's own
// tables (what a state waits for, where each party belongs); what no call
// knows is cleared away.
import type { Logger } from '../log.js';
import { tolerateGone, type Ari } from './ari.js';
import type { ChannelSnapshot } from './ari-types.js';
import { Cause } from './causes.js';
import type { Leg } from './leg.js';
import type { BridgePicture, Transfer } from './transfer.js';

/** What Asterisk shows at one moment: every channel, and which bridges exist and hold whom. */
export interface AsteriskPicture extends BridgePicture {
  channels: ReadonlyMap<string, ChannelSnapshot>;
}

export async function takePicture(ari: Pick<Ari, 'listChannels' | 'listBridges'>): Promise<AsteriskPicture & { bridgeList: Array<{ id: string; name: string; channels: string[] }> }> {
  const [channels, bridges] = await Promise.all([ari.listChannels(), ari.listBridges()]);
  const bridgeOf = new Map<string, string>();
  for (const b of bridges) for (const c of b.channels) bridgeOf.set(c, b.id);
  return { channels: new Map(channels.map((c) => [c.id, c])), bridges: new Set(bridges.map((b) => b.id)), bridgeOf, bridgeList: bridges };
}

/** What recovery needs of one call: its state, and the handlers its events would have run. */
export interface Recoverable {
  readonly log: Logger;
  readonly phase: 'dialling' | 'bridged' | 'ending' | 'ended';
  readonly legs: Iterable<Leg>;
  /** The caller (leg a) and the called party (leg b), while no transfer says where parties belong. */
  readonly caller: Leg | undefined;
  readonly called: Leg | undefined;
  readonly endingCause: number | undefined;
  readonly transfer: Transfer | undefined;
  readonly mainBridge: string;
  /** The channel runs something other than konami's application (it left Stasis, alive). */
  leftStasis(leg: Leg, ch: ChannelSnapshot): boolean;
  /** A caller kept before its device was: its device, read from the channel Asterisk shows. */
  learnDevice(leg: Leg, ch: ChannelSnapshot): void;
  hangUp(leg: Leg, cause: number): Promise<void>;
  gone(leg: Leg, cause: number): Promise<void>;
  answered(leg: Leg): Promise<void>;
  dialFailed(leg: Leg, dialstatus: string): Promise<void>;
  inStasis(leg: Leg): Promise<void>;
  end(cause: number): Promise<void>;
  placeIn(leg: Leg | undefined, bridgeId: string, picture: BridgePicture): Promise<boolean>;
  /** Timers kept from before a restart start from now (a call that ended has none). */
  armRestoredTimers(): void;
}

/**
 * Brings one call up to date with `picture`. Only `known` channels are
 * judged (those the call had before the picture was taken); each difference
 * becomes the event konami missed: a channel that no longer exists hung up,
 * one that is up answered, one that is busy failed. Then every party is put
 * back into the bridge its state says, unless the missed events moved
 * parties themselves (the picture predates them).
 */
export async function recoverCall(call: Recoverable, picture: AsteriskPicture, known: ReadonlySet<string>): Promise<void> {
  let missed = 0;
  // konami kept the channel it was making for the transfer but stopped before the transfer heard
  // of it: the transfer takes it back first, so what Asterisk shows of it below reaches the transfer.
  const adopted = call.transfer?.adopt(call.legs);
  if (adopted) call.log.warn({ leg: adopted.kind, channel: adopted.id }, 'transfer channel taken back after a restart');
  for (const leg of [...call.legs]) {
    if (!known.has(leg.id) || leg.gone || call.phase === 'ended') continue;
    const ch = picture.channels.get(leg.id);
    if (!ch || call.leftStasis(leg, ch)) {
      call.log.info({ leg: leg.kind, channel: leg.id, exists: ch !== undefined }, 'channel ended or left konami while konami was not looking');
      missed++;
      if (ch) await call.hangUp(leg, Cause.NORMAL_CLEARING);
      await call.gone(leg, leg.requestCause ?? Cause.NORMAL_CLEARING);
      continue;
    }
    if (leg.hangupRequested) {
      // konami asked for it to go (its request failed, or konami stopped first): ask again.
      leg.hangupRequested = false;
      await call.hangUp(leg, leg === call.caller && leg.kind === 'a' ? call.endingCause ?? Cause.NORMAL_CLEARING : Cause.NORMAL_CLEARING);
      continue;
    }
    if (leg.kind === 'a') call.learnDevice(leg, ch);
    if (leg.kind === 'a' || leg.answered || call.phase === 'ending') continue;
    if (ch.state === 'Ringing' || ch.state === 'Ring') leg.rang = true;
    if (ch.state === 'Up') {
      missed++;
      leg.answered = true;
      await call.answered(leg);
    } else if (ch.state === 'Busy') {
      missed++;
      await call.dialFailed(leg, 'BUSY');
    } else if (!leg.dialled) {
      missed++;
      leg.inStasis = true;
      await call.inStasis(leg);
    }
  }
  if (call.phase === 'ending') {
    await call.end(call.endingCause ?? Cause.NORMAL_CLEARING);
    return;
  }
  // The transfer learns what its state waits for and did not get (konami stopped in between).
  if (call.transfer && call.phase === 'bridged' && (await call.transfer.recover(undefined))) missed++;
  // Timers kept from before a restart run from now on, after the missed events.
  call.armRestoredTimers();
  // The events just played moved parties themselves, and the picture predates them: only a call that missed nothing is checked against it.
  if (call.phase !== 'bridged' || missed > 0) return;
  if (call.transfer) await call.transfer.recover(picture);
  else for (const leg of [call.caller, call.called]) await call.placeIn(leg, call.mainBridge, picture);
}

/** A call, as the application's recovery sees it. */
export interface CallInRecovery {
  /** The channels Asterisk must already show if they still exist (none still being created). */
  settledChannelIds(): string[];
  /** The bridges the call may own. */
  bridgeIds(): string[];
  /** Runs recoverCall in the call's own queue. */
  reconcile(picture: AsteriskPicture, known: ReadonlySet<string>): Promise<void>;
}

/** What recovery needs of the application: its calls, and which channels they own. */
export interface RecoveringApp {
  readonly log: Logger;
  readonly ari: Pick<Ari, 'listChannels' | 'listBridges' | 'hangup' | 'destroyBridge'>;
  /** The calls now (read afresh each time: recovery ends some). */
  calls(): Iterable<CallInRecovery>;
  /** A call owns this channel. */
  owns(channelId: string): boolean;
  /** The channel is in konami's Stasis application. */
  inApp(ch: ChannelSnapshot): boolean;
  /** How long a channel no call knows may wait for its StasisStart (ms). */
  strayGraceMs: number;
}

/** What a reconciliation found and did. */
export interface ReconcileReport {
  calls: number;
  /** Channels in konami's application that no call knew: hung up. */
  orphanChannels: number;
  /** konami's bridges that no call knew: destroyed. */
  orphanBridges: number;
}

/**
 * Compares every call with what Asterisk reports now and plays the events
 * konami missed; hangs up channels of konami's application and destroys
 * konami's bridges that no call knows.
 */
export async function recoverAll(app: RecoveringApp): Promise<ReconcileReport> {
  const known = new Map<CallInRecovery, Set<string>>();
  // Channels still being created are left out: the picture may predate them.
  for (const call of app.calls()) known.set(call, new Set(call.settledChannelIds()));
  const picture = await takePicture(app.ari);
  await Promise.all([...known].map(([call, ids]) => call.reconcile(picture, ids)));

  const report: ReconcileReport = { calls: known.size, orphanChannels: 0, orphanBridges: 0 };
  // A channel that just entered may have its StasisStart still on the way: give it a moment.
  const strays = [...picture.channels.values()].filter((ch) => !app.owns(ch.id) && app.inApp(ch));
  if (strays.length > 0) await new Promise((r) => setTimeout(r, app.strayGraceMs));
  for (const ch of strays) {
    if (app.owns(ch.id)) continue;
    // Made by konami for a call no longer known, or a caller whose call was lost: nobody can look after it.
    app.log.warn({ channel: ch.id, name: ch.name, state: ch.state, app_data: ch.dialplan.app_data }, 'channel of no known call: hung up');
    report.orphanChannels++;
    await tolerateGone(app.ari.hangup(ch.id, Cause.NORMAL_CLEARING)).catch(() => undefined);
  }
  const owned = new Set<string>();
  for (const call of app.calls()) for (const id of call.bridgeIds()) owned.add(id);
  for (const b of picture.bridgeList) {
    if (owned.has(b.id) || !b.name.startsWith('konami/') || b.channels.some((c) => app.owns(c))) continue;
    app.log.warn({ bridge: b.id, name: b.name, channels: b.channels }, 'bridge of no known call: destroyed');
    report.orphanBridges++;
    await tolerateGone(app.ari.destroyBridge(b.id)).catch(() => undefined);
  }
  app.log.info({ ...report }, 'reconciled with Asterisk');
  return report;
}
