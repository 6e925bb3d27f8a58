// One call konami controls: the caller's channel (leg a), the called party's
// channel that konami dials (leg b), and the mixing bridge that joins them.
// Every event and command of the call runs through its serial queue.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { DigitCollector } from '../metaflow/collector.js';
import type { Invocation } from '../metaflow/modules.js';
import { AriError, tolerateGone, type Ari } from './ari.js';
import type { AriEvent, CallerId, ChannelSnapshot } from './ari-types.js';
import { Cause, causeName } from './causes.js';
import { NO_FEATURES, type CallFeatures } from './features.js';
import { SerialQueue } from './queue.js';

export type LegRole = 'a' | 'b';

export interface Leg {
  readonly id: string;
  readonly role: LegRole;
  caller: CallerId;
  /** Konami has seen StasisStart for it (ARI commands are accepted). */
  inStasis: boolean;
  /** Reached the Ringing state (the far end is alerting). */
  rang: boolean;
  answered: boolean;
  gone: boolean;
  /** The cause of the last hang-up request Asterisk reported for it. */
  requestCause?: number;
  /** Konami asked Asterisk to hang it up. */
  hangupRequested: boolean;
  cause?: number;
}

export type CallPhase = 'dialling' | 'bridged' | 'ending' | 'ended';

export interface CallSettings {
  app: string;
  /** Seconds leg b may ring. */
  ringTimeout: number;
  /** Milliseconds to wait for ChannelDestroyed after a StasisEnd before treating the leg as gone. */
  leftStasisGraceMs?: number;
  features?: CallFeatures;
}

/** How a digit passed on is played to the other party (ms). */
export const DTMF_OUT = { duration: 120, between: 80 } as const;

/** What the call needs from the app that owns it. */
export interface CallOwner {
  claim(channelId: string, call: Call): void;
  ended(call: Call): void;
}

export interface CallEntry {
  channel: ChannelSnapshot;
  account: string | undefined;
  endpoint: string;
}

export const BRIDGE_TYPE = 'mixing,dtmf_events';

/** Final dial statuses that end an unanswered call, and the cause the caller gets. */
const DIAL_FAILURES: Record<string, number> = {
  BUSY: Cause.USER_BUSY,
  CONGESTION: Cause.CONGESTION,
  CHANUNAVAIL: Cause.NO_ROUTE_DESTINATION,
  NOANSWER: Cause.NO_ANSWER,
};

export class Call {
  readonly id: string;
  readonly account: string | undefined;
  readonly endpoint: string;
  readonly a: Leg;
  b: Leg | undefined;
  readonly bridgeId: string;
  phase: CallPhase = 'dialling';
  readonly startedAt = new Date();
  answeredAt: Date | undefined;
  private bridgeCreated = false;
  private readonly queue: SerialQueue;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly digits: DigitCollector;
  private readonly fired: Invocation[] = [];
  /** Digits on their way to each leg, played one request after another. */
  private readonly dtmfOut = new Map<LegRole, SerialQueue>();
  private readonly features: CallFeatures;

  constructor(
    private readonly ari: Ari,
    private readonly owner: CallOwner,
    private readonly settings: CallSettings,
    readonly log: Logger,
    entry: CallEntry,
  ) {
    this.id = entry.channel.id;
    this.account = entry.account;
    this.endpoint = entry.endpoint;
    this.bridgeId = `konami-${randomUUID()}`;
    this.a = newLeg(entry.channel.id, 'a', entry.channel.caller, true);
    this.queue = new SerialQueue((err) => this.log.error({ err }, 'call step failed'));
    this.features = settings.features ?? NO_FEATURES;
    this.digits = new DigitCollector(
      () => this.features.matcher(this.account),
      {
        pass: (from, digits) => this.passDigits(from, digits),
        fire: (invocation) => this.fired.push(invocation),
        unmatched: (from, collected, why) => this.log.info({ leg: from, collected, why }, 'no feature code: digits passed on'),
      },
      {
        set: (fn, ms) => this.later(ms, () => void this.queue.push(() => {
          fn();
          return this.runFired();
        })),
        clear: (handle) => this.cancel(handle as NodeJS.Timeout),
      },
    );
  }

  /** Dials leg b. */
  start(): Promise<void> {
    return this.queue.push(() => this.dialB());
  }

  dispatch(e: AriEvent): Promise<void> {
    return this.queue.push(() => this.on(e));
  }

  /** Resolves when every queued step has run (tests and shutdown). */
  settled(): Promise<void> {
    return this.queue.drained();
  }

  legOf(channelId: string): Leg | undefined {
    if (this.a.id === channelId) return this.a;
    if (this.b?.id === channelId) return this.b;
    return undefined;
  }

  private async dialB(): Promise<void> {
    const id = `konami-${randomUUID()}`;
    const b = newLeg(id, 'b', { name: '', number: '' }, false);
    this.b = b;
    this.owner.claim(id, this);
    const { name, number } = this.a.caller;
    try {
      await this.ari.createChannel({
        endpoint: this.endpoint,
        app: this.settings.app,
        appArgs: `leg=b,call=${this.id}`,
        channelId: id,
        originator: this.a.id,
        // As app_dial does: the called party is shown the caller as its connected line.
        variables: {
          'CALLERID(num)': number,
          'CALLERID(name)': name,
          'CONNECTEDLINE(num)': number,
          'CONNECTEDLINE(name)': name,
        },
      });
    } catch (err) {
      // Asterisk could not even create the channel: no such endpoint or technology.
      this.log.warn({ err: (err as Error).message, endpoint: this.endpoint }, 'could not create the called channel');
      b.gone = true;
      b.cause = Cause.UNALLOCATED;
      await this.fail(Cause.UNALLOCATED);
      return;
    }
    this.log.info({ b: id, endpoint: this.endpoint }, 'dialling');
    await this.step('ring caller', this.ari.ring(this.a.id));
  }

  private async on(e: AriEvent): Promise<void> {
    if (this.phase === 'ended') return;
    this.log.trace({ event: e.type, channel: 'channel' in e ? e.channel.id : undefined }, 'event');
    switch (e.type) {
      case 'StasisStart': {
        const leg = this.legOf(e.channel.id);
        if (leg === this.b && leg) {
          leg.inStasis = true;
          if (this.a.gone || this.phase !== 'dialling') {
            await this.step('hang up b', this.ari.hangup(leg.id, Cause.NORMAL_CLEARING));
            return;
          }
          await this.step('dial b', this.ari.dial(leg.id, { caller: this.a.id, timeout: this.settings.ringTimeout }));
        }
        return;
      }
      case 'ChannelStateChange': {
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.gone) return;
        if (e.channel.state === 'Ringing') leg.rang = true;
        if (e.channel.state === 'Up' && leg === this.b && !leg.answered) await this.onAnswered(leg);
        return;
      }
      case 'Dial': {
        // A target that only indicates busy or congestion (and stays up) ends the dial here.
        const leg = this.legOf(e.peer.id);
        const cause = DIAL_FAILURES[e.dialstatus];
        if (leg === this.b && leg && !leg.answered && this.phase === 'dialling' && cause !== undefined) {
          this.log.info({ dialstatus: e.dialstatus }, 'dial failed');
          await this.fail(cause);
        }
        return;
      }
      case 'StasisEnd': {
        // ChannelDestroyed (which has the cause) follows at once on a hang-up.
        // A channel that left Stasis alive is no longer ours either.
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.gone) return;
        leg.inStasis = false;
        this.later(this.settings.leftStasisGraceMs ?? 1000, () =>
          this.queue.push(() => (leg.gone ? undefined : this.onGone(leg, leg.requestCause ?? Cause.NORMAL_CLEARING))));
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
        return;
      }
      case 'ChannelDtmfReceived': {
        const leg = this.legOf(e.channel.id);
        if (!leg || leg.gone || this.phase !== 'bridged') return;
        this.digits.press(leg.role, e.digit);
        await this.runFired();
        return;
      }
      default:
        return;
    }
  }

  private async onAnswered(b: Leg): Promise<void> {
    b.answered = true;
    this.answeredAt = new Date();
    if (this.phase !== 'dialling' || this.a.gone) return;
    this.log.info({ b: b.id }, 'answered');
    await this.step('answer caller', this.ari.answer(this.a.id));
    await this.ari.createBridge({ bridgeId: this.bridgeId, type: BRIDGE_TYPE, name: `konami/${this.id}` });
    this.bridgeCreated = true;
    // Digits are absorbed by the bridge and passed on by konami, so a feature
    // code never reaches the other party (absorbDTMF must be given on every add).
    await this.step('bridge legs', this.ari.addChannel(this.bridgeId, [this.a.id, b.id], { absorbDTMF: true }));
    if (this.phase === 'dialling') this.phase = 'bridged';
  }

  private async onGone(leg: Leg, cause: number): Promise<void> {
    leg.gone = true;
    leg.cause = cause;
    this.log.info({ leg: leg.role, channel: leg.id, cause, cause_txt: causeName(cause) }, 'party hung up');
    if (this.phase === 'dialling' && leg === this.b) {
      // The called party never answered: the caller hears why.
      await this.fail(callerCause(leg, cause));
      return;
    }
    await this.end(Cause.NORMAL_CLEARING);
  }

  /** Ends the call before answer, giving the caller the cause. */
  private async fail(cause: number): Promise<void> {
    this.log.info({ cause, cause_txt: causeName(cause) }, 'call failed');
    await this.end(cause);
  }

  /** Hangs up whoever is left, destroys the bridge, and finishes once everyone is gone. */
  private async end(cause: number): Promise<void> {
    if (this.phase !== 'ending') this.phase = 'ending';
    this.digits.dispose();
    for (const leg of [this.a, this.b]) {
      if (leg && !leg.gone && !leg.hangupRequested) {
        leg.hangupRequested = true;
        await this.step(`hang up ${leg.role}`, this.ari.hangup(leg.id, leg === this.a ? cause : Cause.NORMAL_CLEARING));
      }
    }
    if (this.bridgeCreated) {
      this.bridgeCreated = false;
      await this.step('destroy bridge', this.ari.destroyBridge(this.bridgeId));
    }
    if (this.a.gone && (!this.b || this.b.gone)) this.finish();
  }

  /** Plays digits `from` pressed to the other party, in order. */
  private passDigits(from: LegRole, digits: string): void {
    const to = from === 'a' ? this.b : this.a;
    if (!to || to.gone || digits === '') return;
    let out = this.dtmfOut.get(to.role);
    if (!out) {
      out = new SerialQueue((err) => this.log.warn({ err: err instanceof AriError ? err.message : err }, 'passing digits failed'));
      this.dtmfOut.set(to.role, out);
    }
    void out.push(() => this.step(`pass digits to ${to.role}`, this.ari.sendDtmf(to.id, digits, DTMF_OUT)));
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
      try {
        await module.run(this, invocation);
      } catch (err) {
        log.error({ err }, 'feature module failed; the call goes on');
      }
    }
  }

  private finish(): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.digits.dispose();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const seconds = this.answeredAt ? Math.round((Date.now() - this.answeredAt.getTime()) / 1000) : 0;
    this.log.info({ talk_seconds: seconds, cause_a: this.a.cause, cause_b: this.b?.cause }, 'call ended');
    this.owner.ended(this);
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private cancel(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }

  /** One ARI step whose target may be gone already: that is logged, not thrown. */
  private async step(what: string, p: Promise<unknown>): Promise<void> {
    try {
      if (!(await tolerateGone(p))) this.log.debug({ step: what }, 'target already gone');
    } catch (err) {
      this.log.warn({ step: what, err: err instanceof AriError ? err.message : err }, 'ARI step failed');
    }
  }
}

function newLeg(id: string, role: LegRole, caller: CallerId, inStasis: boolean): Leg {
  return { id, role, caller, inStasis, rang: false, answered: false, gone: false, hangupRequested: false };
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
