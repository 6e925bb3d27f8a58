// One call konami controls: the caller's channel (party a), the called party
// that konami dials (party b), the mixing bridge that joins them, and, while
// one is in progress, a transfer with its own channels. Every event and
// command of the call runs through its serial queue.
import { randomUUID } from 'node:crypto';
import type { RateLimiter } from '../limits.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type CallMetrics } from '../metrics.js';
import { NO_JOURNAL, type CallJournal } from '../store/call-journal.js';
import { DigitCollector, type CollectorTimers } from '../metaflow/collector.js';
import { KeyWatch } from '../metaflow/sequence.js';
import { DEFAULT_DIGIT_TIMEOUT_MS } from '../metaflow/config.js';
import type { Invocation } from '../metaflow/modules.js';
import { AriError, tolerateGone, type Ari } from './ari.js';
import type { AriEvent, CallerId, ChannelSnapshot } from './ari-types.js';
import { Cause, causeName } from './causes.js';
import { deviceOf, dialString, isDialable, type DialRoutes, type RecallCallers } from './dial.js';
import {
  NO_FEATURES, type CallFeatures, type CallPort, type TransferRefusal, type TransferRequest, type TransferStart,
} from './features.js';
import { newLeg, type Leg, type LegKind, type LegRole } from './leg.js';
import { SerialQueue } from './queue.js';
import { recoverCall, type AsteriskPicture, type Recoverable } from './recovery.js';
import {
  DEFAULT_MOH_CLASSES, FAILURE_MEDIA, Transfer, type BridgePicture, type TransferHost, type TransferRecord,
  type TransferResult, type TransferSettings, type TransferSnapshot,
} from './transfer.js';

export type { Leg, LegRole } from './leg.js';
export type { TransferRefusal, TransferStart } from './features.js';

export type CallPhase = 'dialling' | 'bridged' | 'ending' | 'ended';

export interface CallSettings {
  app: string;
  /** Seconds leg b may ring. */
  ringTimeout: number;
  /** Milliseconds to wait for ChannelDestroyed after a StasisEnd before treating the leg as gone. */
  leftStasisGraceMs?: number;
  features?: CallFeatures;
  /** How long a party left alone hears the failure tone before being hung up (ms). */
  farewellMs?: number;
  metrics?: CallMetrics;
  /** Where the call's state is kept for a konami started again (none by default). */
  journal?: CallJournal;
  /** The dial routes the operator defined and allowed each account. */
  dialRoutes: DialRoutes;
  /** Limits on transfers started (none when absent). */
  transferLimits?: TransferLimits;
  /** How a caller who transferred and left is called back (default: on its device). */
  recallCallers?: RecallCallers;
  /** The music-on-hold classes accounts may name (a class withdrawn since it was saved gives way to the first). */
  mohClasses?: readonly string[];
}

export interface TransferLimits {
  /** Transfers one call may start over its whole life. */
  perCall: number;
  /** Transfers per account, as a token bucket keyed by account. */
  perAccount: Pick<RateLimiter, 'take'>;
}

/** What the call needs from the app that owns it. */
export interface CallOwner {
  claim(channelId: string, call: Call): void;
  ended(call: Call): void;
  /** The call's state changed (after a step, once per change). */
  changed?(call: Call): void;
}

export interface CallEntry {
  channel: ChannelSnapshot;
  account: string | undefined;
  endpoint: string;
}

/** A call as plain data, kept in the journal after every step. */
export interface CallRecord {
  v: 1;
  id: string;
  account?: string;
  endpoint: string;
  called_number: string;
  bridge_id: string;
  bridge_created: boolean;
  phase: CallPhase;
  /** The cause the caller gets, once the call is ending. */
  ending_cause?: number;
  started_at: string;
  answered_at?: string;
  legs: Leg[];
  a?: string;
  b?: string;
  transfer?: TransferRecord;
  last_transfer?: TransferSnapshot;
  transfers_started?: number;
}

export const BRIDGE_TYPE = 'mixing,dtmf_events';

/** The events a call acts on (the others are only traced). */
const CALL_EVENTS = new Set<AriEvent['type']>([
  'StasisStart', 'ChannelStateChange', 'Dial', 'StasisEnd', 'ChannelHangupRequest', 'ChannelDestroyed', 'ChannelDtmfReceived',
]);

/** How a digit passed on is played to the other party (ms). */
export const DTMF_OUT = { duration: 120, between: 80 } as const;

/** How long a hang-up konami asked for may go unconfirmed (ChannelDestroyed) before the channel is nudged (ms). */
export const HANGUP_CONFIRM_MS = 3000;

/** Playback ids kept per channel for `break`. */
const MAX_PLAYBACKS_KEPT = 8;

/** Played to a party left alone before konami hangs it up. */
export const FAREWELL_MEDIA = 'tone:congestion';

/** Final dial statuses that end an unanswered channel, and the cause they stand for. */
const DIAL_FAILURES: Record<string, number> = {
  BUSY: Cause.USER_BUSY,
  CONGESTION: Cause.CONGESTION,
  CHANUNAVAIL: Cause.NO_ROUTE_DESTINATION,
  NOANSWER: Cause.NO_ANSWER,
};

export class Call implements CallPort {
  readonly id: string;
  readonly account: string | undefined;
  readonly endpoint: string;
  a: Leg | undefined;
  b: Leg | undefined;
  bridgeId: string;
  phase: CallPhase = 'dialling';
  transfer: Transfer | undefined;
  /** The last transfer that ended (its final snapshot). */
  lastTransfer: TransferSnapshot | undefined;
  /** Transfers this call started (for TRANSFERS_PER_CALL). */
  private transfersStarted = 0;
  readonly startedAt: Date;
  answeredAt: Date | undefined;
  /** The cause the caller gets once the call is ending. */
  private endingCause: number | undefined;
  private bridgeCreated = false;
  /** Every channel of the call, by id, parties and transfer channels alike. */
  private readonly legs = new Map<string, Leg>();
  private readonly queue: SerialQueue;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly digits: DigitCollector;
  /** The transferor's takeback watch, for the transfer in progress. */
  private takeback: { transfer: Transfer; watch: KeyWatch } | undefined;
  private readonly fired: Invocation[] = [];
  /** Legs whose channel konami is creating now: Asterisk may not show them yet. */
  private readonly creating = new Set<string>();
  /** Timers of a restored call, armed at its first reconciliation (ARI is connected by then). */
  private restoredTimers: Array<() => void> = [];
  /** Digits on their way to each channel, played one request after another. */
  private readonly dtmfOut = new Map<string, SerialQueue>();
  private readonly features: CallFeatures;
  private readonly host: TransferHost;
  /** The number the caller dialled. */
  readonly calledNumber: string;
  /** Playbacks konami started on each channel and not finished, newest last. */
  private readonly playbacks = new Map<string, string[]>();
  private readonly metrics: CallMetrics;
  /** The DTMF event (its time) whose code is running now, if a digit fired it. */
  private firingDigitAt: number | undefined;
  /** A transfer a digit started, until its target is dialled: that digit's time. */
  private setUpFrom: { transfer: Transfer; at: number } | undefined;
  private readonly journal: CallJournal;
  /** The document last given to the journal (unchanged steps write nothing). */
  private kept = '';

  constructor(
    private readonly ari: Ari,
    private readonly owner: CallOwner,
    private readonly settings: CallSettings,
    readonly log: Logger,
    origin: { entry: CallEntry } | { record: CallRecord },
  ) {
    this.queue = new SerialQueue((err) => this.log.error({ err }, 'call step failed'));
    this.features = settings.features ?? NO_FEATURES;
    this.metrics = settings.metrics ?? NO_METRICS;
    this.journal = settings.journal ?? NO_JOURNAL;
    if ('entry' in origin) {
      const { entry } = origin;
      this.id = entry.channel.id;
      this.account = entry.account;
      this.endpoint = entry.endpoint;
      this.bridgeId = `konami-${randomUUID()}`;
      const caller = entry.channel.caller;
      const device = (settings.recallCallers ?? 'device') === 'device' ? deviceOf(entry.channel.name) : undefined;
      this.a = newLeg(entry.channel.id, 'a', { caller, number: caller.number, endpoint: device, inStasis: true });
      this.legs.set(this.a.id, this.a);
      this.calledNumber = entry.channel.dialplan.exten;
      this.startedAt = new Date();
      this.metrics.callEntered();
    } else {
      const r = origin.record;
      this.id = r.id;
      this.account = r.account;
      this.endpoint = r.endpoint;
      this.bridgeId = r.bridge_id;
      this.bridgeCreated = r.bridge_created;
      this.calledNumber = r.called_number;
      this.phase = r.phase;
      this.endingCause = r.ending_cause;
      this.startedAt = new Date(r.started_at);
      this.answeredAt = r.answered_at ? new Date(r.answered_at) : undefined;
      this.lastTransfer = r.last_transfer;
      this.transfersStarted = r.transfers_started ?? 0;
      for (const leg of r.legs) this.legs.set(leg.id, { ...leg });
      this.a = r.a ? this.legs.get(r.a) : undefined;
      this.b = r.b ? this.legs.get(r.b) : undefined;
    }
    this.digits = new DigitCollector(
      () => this.features.matcher(this.account),
      {
        pass: (from, digits) => this.passDigits(this.party(from), digits),
        fire: (invocation) => this.fired.push(invocation),
        unmatched: (from, collected, why) => this.log.info({ leg: from, collected, why }, 'no feature code: digits passed on'),
      },
      this.collectorTimers(),
    );
    this.host = this.transferHost();
    if ('record' in origin && origin.record.transfer) {
      const kept = origin.record.transfer;
      // A record kept before RECALL_CALLERS existed follows the setting of today.
      const record = { ...kept, settings: { ...kept.settings, recallByNumber: kept.settings.recallByNumber ?? settings.recallCallers === 'number' } };
      const t = Transfer.restore(this.host, record, (id) => (id ? this.legs.get(id) : undefined));
      this.transfer = t;
      if (t) this.restoredTimers.push(() => t.armRestoredTimers());
    }
  }

  /** Rebuilds a call from its kept record; reconcile() then brings it up to date with Asterisk. */
  static restore(ari: Ari, owner: CallOwner, settings: CallSettings, log: Logger, record: CallRecord): Call {
    const call = new Call(ari, owner, settings, log, { record });
    call.kept = JSON.stringify(record);
    return call;
  }

  /** Keeps the call's record, then dials leg b. */
  start(): Promise<void> {
    return this.step_(() => this.dialB());
  }

  dispatch(e: AriEvent): Promise<void> {
    if (this.entering.size > 0 && (e.type === 'StasisStart' || e.type === 'StasisEnd' || e.type === 'ChannelDestroyed')) {
      this.entering.get(e.channel.id)?.settle(e.type === 'StasisStart');
    }
    // Bridge and playback events change nothing konami keeps: no need to write the record.
    if (!CALL_EVENTS.has(e.type)) return this.queue.push(() => this.on(e));
    return this.step_(() => this.on(e));
  }

  /** Runs a command (an API request, say) in the call's queue. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      void this.step_(() => fn().then(resolve, reject));
    });
  }

  /** The channel ids konami looks after in this call (alive or not). */
  channelIds(): string[] {
    return [...this.legs.keys()];
  }

  /** The channels Asterisk must already show if they still exist (none still being created). */
  settledChannelIds(): string[] {
    return [...this.legs.keys()].filter((id) => !this.creating.has(id));
  }

  /** The bridges this call may own. */
  bridgeIds(): string[] {
    return this.transfer ? [this.bridgeId, this.transfer.consultBridge] : [this.bridgeId];
  }

  /** Brings the call up to date with what Asterisk reports, in its own queue (see recovery.ts). */
  reconcile(picture: AsteriskPicture, known: ReadonlySet<string>): Promise<void> {
    return this.step_(() => recoverCall(this.recoverable(), picture, known));
  }

  /** The call as its recovery sees it: its state and the handlers its missed events run. */
  private recoverable(): Recoverable {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const call = this;
    return {
      log: this.log,
      get phase() { return call.phase; },
      get legs() { return call.legs.values(); },
      get caller() { return call.a; },
      get called() { return call.b; },
      get endingCause() { return call.endingCause; },
      get transfer() { return call.transfer; },
      mainBridge: this.bridgeId,
      leftStasis: (leg, ch) => this.leftStasis(leg, ch),
      learnDevice: (leg, ch) => {
        if (!leg.endpoint && (this.settings.recallCallers ?? 'device') === 'device') leg.endpoint = deviceOf(ch.name);
      },
      hangUp: (leg, cause) => this.hangUp(leg, cause),
      gone: (leg, cause) => this.onGone(leg, cause),
      answered: (leg) => this.onAnswered(leg),
      dialFailed: (leg, status) => this.dialFailed(leg, status),
      inStasis: (leg) => this.onInStasis(leg),
      end: (cause) => this.end(cause),
      placeIn: (leg, bridgeId, picture) => this.placeIn(leg, bridgeId, picture),
      armRestoredTimers: () => {
        for (const arm of this.restoredTimers.splice(0)) if (this.phase !== 'ended') arm();
      },
    };
  }

  /** Asterisk shows the channel running something other than konami's Stasis application (it left, alive). */
  private leftStasis(leg: Leg, ch: ChannelSnapshot): boolean {
    const app = ch.dialplan.app_name;
    if (app === undefined || (leg.kind !== 'a' && !leg.dialled)) return false;
    return !(app === 'Stasis' && (ch.dialplan.app_data ?? '').split(',')[0] === this.settings.app);
  }

  record(): CallRecord {
    return {
      v: 1,
      id: this.id,
      account: this.account,
      endpoint: this.endpoint,
      called_number: this.calledNumber,
      bridge_id: this.bridgeId,
      bridge_created: this.bridgeCreated,
      phase: this.phase,
      ending_cause: this.endingCause,
      started_at: this.startedAt.toISOString(),
      answered_at: this.answeredAt?.toISOString(),
      legs: [...this.legs.values()],
      a: this.a?.id,
      b: this.b?.id,
      transfer: this.transfer?.record(),
      last_transfer: this.lastTransfer,
      transfers_started: this.transfersStarted || undefined,
    };
  }

  /** Resolves when every queued step has run (tests and shutdown). */
  settled(): Promise<void> {
    return this.queue.drained();
  }

  legOf(channelId: string): Leg | undefined {
    return this.legs.get(channelId);
  }

  party(role: LegRole): Leg | undefined {
    return role === 'a' ? this.a : this.b;
  }

  // ---- what feature modules ask of a call ----

  /**
   * Starts an attended transfer of the other party by the party `by` to
   * `target`. Refused (with the reason) when the call is not bridged, a
   * transfer is already in progress, or the target is empty, malformed, or
   * one of the call's own parties.
   */
  async startTransfer({ by, target, options }: TransferRequest): Promise<TransferStart> {
    const refuse = (reason: TransferRefusal): TransferStart => {
      this.log.info({ by, target, reason }, 'transfer refused');
      return { ok: false, reason };
    };
    const transferor = this.party(by);
    const transferee = this.party(by === 'a' ? 'b' : 'a');
    if (this.phase !== 'bridged' || !transferor || !transferee || transferor.gone || transferee.gone) return refuse('not_bridged');
    if (this.transfer) return refuse('in_progress');
    if (target === '') return refuse('empty_target');
    if (!isDialable(target)) return refuse('invalid_target');
    if (target === transferor.number) return refuse('own_number');
    if (target === transferee.number) return refuse('transferee_number');
    const { route, ...timings } = options;
    const dialTemplate = this.settings.dialRoutes.templateFor(this.account, route);
    if (dialTemplate === undefined) return refuse('route_not_allowed');
    const limits = this.settings.transferLimits;
    if (limits && this.transfersStarted >= limits.perCall) return refuse('call_transfer_limit');
    if (limits && limits.perAccount.take(this.account ?? '') > 0) return refuse('account_transfer_rate');
    this.transfersStarted++;
    const offered = this.settings.mohClasses ?? DEFAULT_MOH_CLASSES;
    if (!offered.includes(timings.mohClass)) {
      this.log.warn({ moh_class: timings.mohClass }, 'music-on-hold class no longer offered: the first offered plays instead');
      timings.mohClass = offered[0]!;
    }
    const settings: TransferSettings = { dialTemplate, recallByNumber: this.settings.recallCallers === 'number', ...timings };
    const endpoint = dialString(dialTemplate, target)!;
    const t = new Transfer(this.host, transferor, transferee, this.bridgeId, target, endpoint, settings);
    this.transfer = t;
    this.setUpFrom = this.firingDigitAt === undefined ? undefined : { transfer: t, at: this.firingDigitAt };
    this.metrics.transferStarted();
    await t.start();
    return { ok: true, transfer: t.snapshot() };
  }

  /** Cancels the transfer in progress; only its transferor (or the API, `by` undefined) may. */
  async cancelTransfer(by?: LegRole): Promise<boolean> {
    const t = this.transfer;
    if (!t) return false;
    if (by !== undefined && t.transferor.role !== by) {
      this.log.info({ by }, 'cancel ignored: only the transferor cancels a transfer');
      return false;
    }
    // Calling the transferor back is already the way back: a cancel then does nothing.
    return t.on({ kind: 'cancel' });
  }

  /** Ends the call now (shutdown): every channel hung up, every bridge destroyed. */
  hangUpAll(): Promise<void> {
    return this.step_(() => this.end(Cause.NORMAL_CLEARING));
  }

  /** A short tone telling a party that what they asked for was refused. */
  async refuse(role: LegRole): Promise<void> {
    const leg = this.party(role);
    if (!leg || leg.gone) return;
    if (this.transfer) await this.transfer.cue(leg, FAILURE_MEDIA);
    else await this.play(leg, FAILURE_MEDIA, 'refusal tone');
  }

  /** Stops every playback konami started on a party (Kazoo's break); the music of a held bridge plays on. */
  async silence(leg: Leg): Promise<void> {
    // The transfer's ringing is kept with the call, so it is found after a restart too.
    const ids = new Set([...(this.playbacks.get(leg.id) ?? []), this.transfer?.silenced(leg)]);
    this.playbacks.delete(leg.id);
    for (const id of ids) if (id) await this.step('stop playback', this.ari.stopPlayback(id));
  }

  // ---- events ----

  private async dialB(): Promise<void> {
    const id = `konami-${randomUUID()}`;
    const a = this.a!;
    // Known to the others by the number dialled, as a phone shows it.
    const b = newLeg(id, 'b', { caller: { name: '', number: this.calledNumber }, number: this.calledNumber, endpoint: this.endpoint, inStasis: false });
    this.b = b;
    this.legs.set(id, b);
    this.owner.claim(id, this);
    const created = await this.createChannel(b, this.endpoint, a.caller, a.id);
    if (!created) {
      await this.fail(Cause.UNALLOCATED);
      return;
    }
    this.log.info({ b: id, endpoint: this.endpoint }, 'dialling');
    await this.step('ring caller', this.ari.ring(a.id));
  }

  private async createChannel(leg: Leg, endpoint: string, shownAs: CallerId, originator: string): Promise<boolean> {
    this.creating.add(leg.id);
    try {
      return await this.createChannelNow(leg, endpoint, shownAs, originator);
    } finally {
      this.creating.delete(leg.id);
    }
  }

  private async createChannelNow(leg: Leg, endpoint: string, shownAs: CallerId, originator: string): Promise<boolean> {
    // A konami started again must know every channel it made.
    await this.keep(true);
    try {
      await this.ari.createChannel({
        endpoint,
        app: this.settings.app,
        appArgs: `leg=${leg.kind},call=${this.id}`,
        channelId: leg.id,
        originator,
        // As app_dial does: the called party is shown the caller as its connected line.
        variables: {
          'CALLERID(num)': shownAs.number,
          'CALLERID(name)': shownAs.name,
          'CONNECTEDLINE(num)': shownAs.number,
          'CONNECTEDLINE(name)': shownAs.name,
        },
      });
      return true;
    } catch (err) {
      // Asterisk could not even create the channel: no such endpoint or technology.
      this.log.warn({ err: (err as Error).message, endpoint, leg: leg.kind }, 'could not create a channel');
      leg.gone = true;
      leg.cause = Cause.UNALLOCATED;
      return false;
    }
  }

  private async on(e: AriEvent): Promise<void> {
    if (this.phase === 'ended') return;
    this.log.trace({ event: e.type, channel: 'channel' in e ? e.channel.id : undefined }, 'event');
    switch (e.type) {
      case 'StasisStart': {
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.kind === 'a') return;
        leg.inStasis = true;
        await this.onInStasis(leg);
        return;
      }
      case 'ChannelStateChange': {
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.gone) return;
        if (e.channel.state === 'Ringing') leg.rang = true;
        if (e.channel.state === 'Up' && !leg.answered && leg.kind !== 'a') {
          leg.answered = true;
          await this.onAnswered(leg);
        }
        return;
      }
      case 'PlaybackFinished': {
        // Kept for `break` and for a hang-up (settlePlaybacks) until finished.
        const channel = e.playback.target_uri.slice('channel:'.length);
        const ids = this.playbacks.get(channel)?.filter((id) => id !== e.playback.id);
        if (ids?.length) this.playbacks.set(channel, ids);
        else this.playbacks.delete(channel);
        return;
      }
      case 'Dial': {
        // A target that only indicates busy or congestion (and stays up) ends the dial here.
        const leg = this.legOf(e.peer.id);
        const from = this.setUpFrom;
        if (from && e.dialstatus === '' && leg && leg === from.transfer.target) {
          this.setUpFrom = undefined;
          const ms = Date.parse(e.timestamp) - from.at;
          this.metrics.transferSetUp(ms);
          this.log.info({ transfer_id: from.transfer.id, setup_ms: ms }, 'transfer target dialled');
        }
        if (leg) await this.dialFailed(leg, e.dialstatus);
        return;
      }
      case 'StasisEnd': {
        // ChannelDestroyed (which has the cause) follows at once on a hang-up.
        // A channel that left Stasis alive is no longer ours either.
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.gone) return;
        leg.inStasis = false;
        this.later(this.settings.leftStasisGraceMs ?? 1000, async () => {
          if (!leg.gone) await this.onGone(leg, leg.requestCause ?? Cause.NORMAL_CLEARING);
        });
        return;
      }
      case 'ChannelHangupRequest': {
        const leg = this.legOf(e.channel.id);
        if (leg && e.cause !== undefined) leg.requestCause = e.cause;
        return;
      }
      case 'ChannelDestroyed': {
        const leg = this.legOf(e.channel.id);
        if (leg && !leg.gone) await this.onGone(leg, e.cause);
        else if (leg) this.finishIfEmpty();
        return;
      }
      case 'ChannelDtmfReceived': {
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.gone || this.phase !== 'bridged') return;
        if (leg.role && (leg === this.a || leg === this.b)) {
          const takeback = this.takebackOf(leg);
          if (takeback?.press(e.digit)) {
            // The transferor pressed the takeback code: what it was typing is dropped, never heard.
            this.digits.forget(leg.role);
            this.log.info({ leg: leg.role }, 'takeback code pressed');
            await this.cancelTransfer(leg.role);
            return;
          }
          if (!takeback) this.digits.press(leg.role, e.digit);
          // A transfer this digit starts is timed from it (Asterisk's clock) to its target's dial.
          this.firingDigitAt = Date.parse(e.timestamp);
          try {
            await this.runFired();
          } finally {
            this.firingDigitAt = undefined;
          }
        } else {
          this.passDigits(leg, e.digit);
        }
        return;
      }
      default:
        return;
    }
  }

  /** A dial ended without an answer (busy, congestion, unreachable, no answer). */
  private async dialFailed(leg: Leg, dialstatus: string): Promise<void> {
    const cause = DIAL_FAILURES[dialstatus];
    if (leg.gone || leg.answered || cause === undefined) return;
    this.log.info({ leg: leg.kind, dialstatus }, 'dial failed');
    if (leg.kind === 'b') {
      if (this.phase === 'dialling') await this.fail(cause);
      return;
    }
    await this.hangUp(leg, Cause.NORMAL_CLEARING);
    await this.onGone(leg, cause);
  }

  private async onInStasis(leg: Leg): Promise<void> {
    if (leg.kind === 'b') {
      if (!this.a || this.a.gone || this.phase !== 'dialling') {
        await this.hangUp(leg, Cause.NORMAL_CLEARING);
        return;
      }
      leg.dialled = true;
      await this.step('dial b', this.ari.dial(leg.id, { caller: this.a.id, timeout: this.settings.ringTimeout }));
      return;
    }
    if (this.transfer?.owns(leg) && this.phase === 'bridged') {
      // The transfer may have dialled her already, as soon as she entered.
      if (!leg.dialled) await this.transfer.dialLeg(leg);
    } else await this.hangUp(leg, Cause.NORMAL_CLEARING); // its transfer ended before it got here
  }

  private async onAnswered(leg: Leg): Promise<void> {
    if (leg.kind === 'b') {
      if (this.phase === 'dialling') await this.bridge(leg);
      return;
    }
    const t = this.transfer;
    if (t?.owns(leg)) await t.on({ kind: leg === t.target ? 'target_answered' : 'recall_answered' });
    else await this.hangUp(leg, Cause.NORMAL_CLEARING);
  }

  private async bridge(b: Leg): Promise<void> {
    const a = this.a;
    this.answeredAt = new Date();
    if (!a || a.gone) return;
    this.log.info({ b: b.id }, 'answered');
    await this.step('answer caller', this.ari.answer(a.id));
    await this.step('create bridge', this.ari.createBridge({ bridgeId: this.bridgeId, type: BRIDGE_TYPE, name: `konami/${this.id}` }));
    this.bridgeCreated = true;
    // Digits are absorbed by the bridge and passed on by konami, so a feature
    // code never reaches the other party (absorbDTMF must be given on every add).
    await this.step('bridge legs', this.ari.addChannel(this.bridgeId, [a.id, b.id], { absorbDTMF: true }));
    if (this.phase === 'dialling') this.phase = 'bridged';
  }

  private async onGone(leg: Leg, cause: number): Promise<void> {
    leg.gone = true;
    leg.cause = cause;
    this.log.info({ leg: leg.kind, role: leg.role, channel: leg.id, cause, cause_txt: causeName(cause) }, 'party hung up');
    const t = this.transfer;
    if (t && this.phase === 'bridged') {
      if (leg === t.transferor) await t.on({ kind: 'transferor_gone' });
      else if (leg === t.transferee) await t.on({ kind: 'transferee_gone' });
      else if (leg === t.target) await t.on({ kind: 'target_gone', cause: leg.answered ? cause : callerCause(leg, cause) });
      else if (leg === t.recall) await t.on({ kind: 'recall_gone', cause: callerCause(leg, cause) });
    } else if (leg === this.b && this.phase === 'dialling') {
      // The called party never answered: the caller hears why.
      await this.fail(callerCause(leg, cause));
    } else if (leg === this.a || leg === this.b) {
      await this.end(Cause.NORMAL_CLEARING);
    }
    this.finishIfEmpty();
  }

  /** The transfer handed the call back: take its parties and bridge, go on or end. */
  private async transferEnded(t: Transfer, result: TransferResult): Promise<void> {
    if (this.transfer !== t) return;
    this.transfer = undefined;
    this.takeback?.watch.dispose();
    this.takeback = undefined;
    this.lastTransfer = t.snapshot();
    this.metrics.transferEnded(result.outcome, result.cause);
    const { a, b } = result.parties;
    // A party replaced or gone takes its half-typed code with it.
    if (a !== this.a) this.digits.forget('a');
    if (b !== this.b) this.digits.forget('b');
    if (a) a.role = 'a';
    if (b) b.role = 'b';
    for (const leg of [this.a, this.b]) if (leg && leg !== a && leg !== b) leg.role = undefined;
    this.a = a;
    this.b = b;
    if (result.bridgeId !== this.bridgeId) {
      await this.step('destroy the old bridge', this.ari.destroyBridge(this.bridgeId));
      this.bridgeId = result.bridgeId;
    }
    if (result.farewell && !result.farewell.gone) {
      await this.farewell(result.farewell, result.cause ?? Cause.NORMAL_CLEARING);
      return;
    }
    if (!a || !b || a.gone || b.gone) await this.end(Cause.NORMAL_CLEARING);
  }

  /** A party left alone hears a failure tone, then the call ends. */
  private async farewell(leg: Leg, cause: number): Promise<void> {
    this.phase = 'ending';
    this.endingCause = cause;
    this.digits.dispose();
    await this.play(leg, FAREWELL_MEDIA, 'failure tone');
    this.later(this.settings.farewellMs ?? 2000, () => this.end(cause));
  }

  /** Ends the call before answer, giving the caller the cause. */
  private async fail(cause: number): Promise<void> {
    this.log.info({ cause, cause_txt: causeName(cause) }, 'call failed');
    await this.end(cause);
  }

  /** Hangs up whoever is left, destroys the bridges, and finishes once every channel is gone. */
  private async end(cause: number): Promise<void> {
    if (this.phase === 'ended') return;
    this.phase = 'ending';
    this.endingCause = cause;
    this.digits.dispose();
    if (this.transfer) this.metrics.transferEnded('abandoned', undefined);
    this.transfer?.dispose();
    this.takeback?.watch.dispose();
    this.takeback = undefined;
    for (const leg of this.legs.values()) {
      // The caller gets the cause; everyone else a normal clearing.
      await this.hangUp(leg, leg === this.a && leg.kind === 'a' ? cause : Cause.NORMAL_CLEARING);
    }
    for (const id of this.transfer?.bridges() ?? []) await this.step('destroy transfer bridge', this.ari.destroyBridge(id));
    this.transfer = undefined;
    if (this.bridgeCreated) {
      this.bridgeCreated = false;
      await this.step('destroy bridge', this.ari.destroyBridge(this.bridgeId));
    }
    this.finishIfEmpty();
  }

  private finishIfEmpty(): void {
    if (this.phase !== 'ending') return;
    for (const leg of this.legs.values()) if (!leg.gone) return;
    this.finish();
  }

  /**
   * Targets this call made and whether each entered Stasis, settled as soon as
   * its StasisStart (or its end) arrives, which may be before Asterisk's answer
   * to the request that made it; kept until the call ends (a few per call).
   */
  private readonly entering = new Map<string, { promise: Promise<boolean>; settle: (inStasis: boolean) => void }>();

  private expectEntry(channelId: string): void {
    let settle!: (inStasis: boolean) => void;
    const promise = new Promise<boolean>((resolve) => (settle = resolve));
    this.entering.set(channelId, { promise, settle });
  }

  private finish(): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    for (const { settle } of this.entering.values()) settle(false);
    this.entering.clear();
    this.digits.dispose();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const seconds = this.answeredAt ? Math.round((Date.now() - this.answeredAt.getTime()) / 1000) : 0;
    this.log.info({ talk_seconds: seconds }, 'call ended');
    this.owner.ended(this);
  }

  // ---- digits and modules ----

  /** Plays digits `from` pressed to whoever hears that party now, in order. */
  private passDigits(from: Leg | undefined, digits: string): void {
    if (!from || digits === '') return;
    const to = this.transfer ? this.transfer.peerOf(from) : from === this.a ? this.b : from === this.b ? this.a : undefined;
    if (!to || to.gone) return;
    let out = this.dtmfOut.get(to.id);
    if (!out) {
      out = new SerialQueue((err) => this.log.warn({ err: err instanceof AriError ? err.message : err }, 'passing digits failed'));
      this.dtmfOut.set(to.id, out);
    }
    void out.push(async () => {
      await this.step(`pass digits to ${to.kind}`, this.ari.sendDtmf(to.id, digits, DTMF_OUT));
    });
  }

  /**
   * The watch for the takeback code of the transfer in progress, if `leg` is
   * its transferor: the transferor's keys go through it first, and what it
   * gives back goes on to the feature codes as usual.
   */
  private takebackOf(leg: Leg): KeyWatch | undefined {
    const t = this.transfer;
    if (!t || leg !== t.transferor || !leg.role) return undefined;
    if (this.takeback?.transfer !== t) {
      this.takeback?.watch.dispose();
      const role = leg.role;
      const gap = this.features.matcher(this.account)?.digitTimeoutMs ?? DEFAULT_DIGIT_TIMEOUT_MS;
      const watch = new KeyWatch(t.settings.takebackDtmf, gap, (keys) => {
        for (const key of keys) this.digits.press(role, key);
      }, this.collectorTimers());
      this.takeback = { transfer: t, watch };
    }
    return this.takeback.watch;
  }

  /** Timers for the digit logic: they run through the call's queue, then run the codes that fired. */
  private collectorTimers(): CollectorTimers {
    return {
      set: (fn, ms) => this.later(ms, async () => {
        fn();
        await this.runFired();
      }),
      clear: (handle) => this.cancel(handle as NodeJS.Timeout),
    };
  }

  /** Runs the modules of the codes that just matched, one after another, inside the call's queue. */
  private async runFired(): Promise<void> {
    while (this.fired.length > 0) {
      const invocation = this.fired.shift()!;
      const module = this.features.module(invocation.module);
      const log = this.log.child({ module: invocation.module, leg: invocation.leg });
      if (!module) {
        log.warn({ collected: invocation.collected }, 'feature code names a module that is not available');
        continue;
      }
      log.info({ collected: invocation.collected, captures: invocation.captures }, 'feature code matched');
      this.metrics.codeMatched(invocation.module);
      try {
        await module.run(this, invocation);
      } catch (err) {
        log.error({ err }, 'feature module failed; the call goes on');
      }
    }
  }

  // ---- plumbing ----

  private transferHost(): TransferHost {
    return {
      ari: this.ari,
      app: this.settings.app,
      callId: this.id,
      log: this.log,
      originate: async (kind: LegKind, endpoint: string, number: string, shownAs: CallerId, originator: string) => {
        const leg = newLeg(`konami-${randomUUID()}`, kind, { caller: { name: '', number }, number, endpoint, inStasis: false });
        this.legs.set(leg.id, leg);
        this.owner.claim(leg.id, this);
        // The target is dialled as soon as she enters (see entered): her StasisStart may come
        // before Asterisk's answer to the request that made her.
        if (kind === 'target') this.expectEntry(leg.id);
        if (await this.createChannel(leg, endpoint, shownAs, originator)) return leg;
        this.entering.get(leg.id)?.settle(false);
        this.entering.delete(leg.id);
        return undefined;
      },
      entered: (leg) => this.entering.get(leg.id)?.promise ?? Promise.resolve(false),
      step: (what, p) => this.step(what, p),
      hangUp: (leg) => this.hangUp(leg, Cause.NORMAL_CLEARING),
      play: (leg, media, what, playbackId) => this.play(leg, media, what, playbackId),
      placeIn: (leg, bridgeId, picture) => this.placeIn(leg, bridgeId, picture),
      later: (ms, fn) => this.later(ms, fn),
      cancel: (timer) => this.cancel(timer as NodeJS.Timeout),
      ended: (t, result) => this.transferEnded(t, result),
    };
  }

  private async hangUp(leg: Leg, cause: number): Promise<void> {
    if (leg.gone || leg.hangupRequested) return;
    leg.hangupRequested = true;
    await this.settlePlaybacks(leg);
    // A request that failed (Asterisk out of reach) is tried again at the next reconciliation.
    if (!(await this.step(`hang up ${leg.kind}`, this.ari.hangup(leg.id, cause)))) {
      leg.hangupRequested = false;
      return;
    }
    // Asterisk can accept a hang-up of a channel just out of a destroyed bridge and leave it up:
    // its Stasis loop notices only when a command reaches it. Not gone by then, it is nudged.
    this.later(HANGUP_CONFIRM_MS, async () => {
      if (leg.gone) return;
      this.log.warn({ leg: leg.kind, channel: leg.id }, 'hang-up not confirmed by Asterisk: nudging the channel');
      await this.step(`nudge ${leg.kind} to end`, this.ari.answer(leg.id));
    });
  }

  /**
   * Before konami hangs up a party that has a playback of ours not finished:
   * Asterisk plays to a bridged channel through its bridge, and holds the
   * channel's Stasis loop until the bridge has taken the playback. A channel
   * that leaves its bridge by hanging up before that can stay up, deaf to
   * every request, for up to ten minutes. So the playbacks are stopped, and a
   * request that goes through that loop (answer: the party is up already) is
   * awaited, before the hang-up.
   */
  private async settlePlaybacks(leg: Leg): Promise<void> {
    if (!this.playbacks.get(leg.id)?.length || !leg.inStasis || !(leg.kind === 'a' || leg.answered)) return;
    await this.silence(leg);
    await this.step(`let ${leg.kind}'s playbacks end`, this.ari.answer(leg.id));
  }

  /** A timer whose work runs in the call's queue; all are cleared when the call ends. */
  private later(ms: number, fn: () => Promise<void> | void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.step_(async () => {
        if (this.phase !== 'ended') await fn();
      });
    }, ms);
    this.timers.add(t);
    return t;
  }

  private cancel(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }

  /** Runs one task in the call's queue, then keeps the call's record. */
  private step_(task: () => Promise<void>): Promise<void> {
    return this.queue.push(async () => {
      try {
        await task();
      } finally {
        await this.keep(false);
      }
    });
  }

  /** Gives the call's record to the journal if it changed (and waits for the disk when `now`). */
  private async keep(now: boolean): Promise<void> {
    if (this.phase === 'ended') {
      if (this.kept !== 'removed') {
        this.journal.remove(this.id);
        this.owner.changed?.(this);
      }
      this.kept = 'removed';
      return;
    }
    const json = JSON.stringify(this.record());
    if (json === this.kept && !now) return;
    const changed = json !== this.kept;
    this.kept = json;
    if (!now) this.journal.save(this.id, json);
    else {
      try {
        await this.journal.saveNow(this.id, json);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'call state not kept');
      }
    }
    if (changed) this.owner.changed?.(this);
  }

  /** Puts a living party into a bridge if Asterisk shows it elsewhere (creating the bridge if it is gone). */
  private async placeIn(leg: Leg | undefined, bridgeId: string, picture: BridgePicture): Promise<boolean> {
    if (!leg || leg.gone || picture.bridgeOf.get(leg.id) === bridgeId) return false;
    if (!picture.bridges.has(bridgeId)) {
      await this.step('create bridge again', this.ari.createBridge({ bridgeId, type: BRIDGE_TYPE, name: `konami/${this.id}` }));
    }
    this.log.warn({ channel: leg.id, bridge: bridgeId }, 'party found outside its bridge: put back');
    await this.step('put party back', this.ari.addChannel(bridgeId, [leg.id], { absorbDTMF: true }));
    return true;
  }

  /** Plays media to a party, keeping the playback's id so `silence` can stop it. */
  private play(leg: Leg, media: string | string[], what: string, playbackId = `konami-play-${randomUUID()}`): Promise<boolean> {
    // A party hears a few playbacks at most at once: older ones have ended.
    const ids = [...(this.playbacks.get(leg.id) ?? []), playbackId].slice(-MAX_PLAYBACKS_KEPT);
    this.playbacks.set(leg.id, ids);
    return this.step(what, this.ari.play(leg.id, media, playbackId));
  }

  /** One ARI step whose target may be gone already: that is logged, not thrown. */
  private async step(what: string, p: Promise<unknown>): Promise<boolean> {
    try {
      if (!(await tolerateGone(p))) this.log.debug({ step: what }, 'target already gone');
      return true;
    } catch (err) {
      this.log.warn({ step: what, err: err instanceof AriError ? err.message : err }, 'ARI step failed');
      return false;
    }
  }
}

/**
 * The cause the caller gets when the called party ends unanswered. Busy, no
 * answer and rejected pass through; a channel that died before it even rang,
 * with no cause of its own, was unreachable.
 */
export function callerCause(b: Pick<Leg, 'rang'>, cause: number): number {
  const plain = cause === 0 || cause === Cause.NORMAL_CLEARING || cause === Cause.NORMAL_UNSPECIFIED;
  if (!plain) return cause;
  return b.rang ? Cause.NORMAL_CLEARING : Cause.NO_ROUTE_DESTINATION;
}
