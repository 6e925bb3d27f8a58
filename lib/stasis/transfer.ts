// One attended transfer, as an explicit state table. Alice (the transferor)
// asks to transfer Bob (the transferee) to Mary (the target):
//
//   calling          Mary rings. Bob holds alone in the call's bridge with
//                    music on hold; Alice waits in a consultation bridge
//                    hearing ringing.
//   consulting       Mary answered: Alice and Mary talk; Bob still holds.
//   partial          Alice hung up while Mary rang: Bob hears ringing and is
//                    joined to Mary when she answers.
//   recalling        Mary failed after Alice left: Alice is called back.
//   recall_wait      between two recall attempts.
//   transferee_gone  Bob hung up while Mary rang: Alice waits for her alone.
//   ended            the call is handed back with its new pair of parties.
//
// Each row of TABLE says what a stimulus does in a state. All stimuli of a
// transfer arrive through its call's serial queue, one at a time; every ARI
// step tolerates a party that is already gone. The state is plain data
// (snapshot()) so it can be persisted and rebuilt.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Ari } from './ari.js';
import type { CallerId } from './ari-types.js';
import { Cause } from './causes.js';
import { dialString } from './dial.js';
import type { Leg, LegKind } from './leg.js';

export type TransferState =
  | 'calling' | 'consulting' | 'partial' | 'recalling' | 'recall_wait' | 'transferee_gone' | 'ended';

export type TransferOutcome =
  /** Bob and Mary are connected. */
  | 'completed'
  /** Mary failed after Alice left; Alice answered the recall and is back with Bob. */
  | 'recalled'
  /** Mary was busy, did not answer, rejected or could not be reached: Alice is back with Bob. */
  | 'failed'
  /** Alice (or the API) cancelled: Mary was hung up, Alice is back with Bob. */
  | 'cancelled'
  /** Mary hung up during the consultation: Alice is back with Bob. */
  | 'target_hung_up'
  /** Bob hung up: Alice and Mary go on as a normal call (or Alice is told Mary failed). */
  | 'transferee_gone'
  /** Mary and every recall failed: Bob heard a failure tone and was hung up. */
  | 'recall_failed'
  /** Everybody who could be connected is gone. */
  | 'abandoned';

export interface TransferSettings {
  /** The template of the dial route the transfer was started with ({target}). */
  dialTemplate: string;
  /** A transferor konami knows no dial string for is called back on its caller id number (RECALL_CALLERS=number). */
  recallByNumber?: boolean;
  /** Seconds the target (and each recall) may ring. */
  ringTimeout: number;
  mohClass: string;
  /** Times the transferor is called back when the target fails after a partial transfer. */
  recallAttempts: number;
  /** Seconds between two recall attempts. */
  recallDelay: number;
  /** Keys the transferor presses to cancel the transfer (Kazoo's takeback_dtmf). */
  takebackDtmf: string;
  /** What a party waiting for the target hears (a media URI). */
  ringback: string;
  /** blind: the transferor leaves at once and the transferee waits for the target, hearing ringing. */
  type: 'attended' | 'blind';
}

/** The music-on-hold classes accounts may name unless the operator says otherwise (MOH_CLASSES). */
export const DEFAULT_MOH_CLASSES: readonly string[] = ['default'];

/** What a transfer record kept before a setting existed runs with. */
export const SETTINGS_BEFORE = { takebackDtmf: '*1', ringback: 'tone:ring', type: 'attended' } as const;

/** What a transfer is asked for with: a dial route by name, resolved for the account when it starts. */
export interface TransferOptions extends Omit<TransferSettings, 'dialTemplate' | 'recallByNumber'> {
  route: string;
}

export type Stimulus =
  | { kind: 'target_answered' }
  | { kind: 'target_gone'; cause: number }
  | { kind: 'transferor_gone' }
  | { kind: 'transferee_gone' }
  | { kind: 'cancel' }
  | { kind: 'recall_answered' }
  | { kind: 'recall_gone'; cause: number }
  | { kind: 'recall_timer' };

/** How the call goes on after the transfer: its two parties (either may be missing) and its bridge. */
export interface TransferResult {
  outcome: TransferOutcome;
  cause?: number;
  parties: { a: Leg | undefined; b: Leg | undefined };
  bridgeId: string;
  /** A party left alone who must hear a failure tone before being hung up. */
  farewell?: Leg;
}

/** What a transfer needs from its call. */
export interface TransferHost {
  readonly ari: Ari;
  readonly app: string;
  readonly callId: string;
  readonly log: Logger;
  /** Creates a channel for this call (the target or a recall); undefined if Asterisk refused to create it. */
  originate(kind: LegKind, endpoint: string, number: string, shownAs: CallerId, originator: string): Promise<Leg | undefined>;
  /**
   * Resolves true as soon as a channel this call made entered Stasis (before
   * its StasisStart takes its turn in the call's queue), false if it is gone first.
   */
  entered(leg: Leg): Promise<boolean>;
  /** An ARI step whose target may be gone already (logged, never thrown). */
  step(what: string, p: Promise<unknown>): Promise<boolean>;
  /** Hangs a channel of the call up (normal clearing), once; one already gone is no error. */
  hangUp(leg: Leg): Promise<void>;
  /** Plays media to a party (a step); the playback can be stopped by the call's `break`. */
  play(leg: Leg, media: string | string[], what: string, playbackId?: string): Promise<boolean>;
  /** Puts a living party into a bridge if Asterisk shows it elsewhere (the bridge made again if gone); says if it did. */
  placeIn(leg: Leg | undefined, bridgeId: string, picture: BridgePicture): Promise<boolean>;
  /** A timer whose callback runs through the call's queue. */
  later(ms: number, fn: () => Promise<void>): unknown;
  cancel(timer: unknown): void;
  ended(transfer: Transfer, result: TransferResult): Promise<void>;
}

export interface TransferSnapshot {
  id: string;
  call_id: string;
  state: TransferState;
  outcome?: TransferOutcome;
  target: string;
  transferor: { role: string; channel: string };
  transferee: { role: string; channel: string };
  target_channel?: string;
  target_answered: boolean;
  recall_channel?: string;
  recall_attempts: number;
  main_bridge: string;
  consult_bridge: string;
  settings: TransferSettings;
  started_at: string;
  updated_at: string;
}

type Row = (t: Transfer, s: Stimulus) => Promise<void>;

const TABLE: Record<TransferState, Partial<Record<Stimulus['kind'], Row>>> = {
  calling: {
    target_answered: (t) => t.consult(),
    target_gone: (t, s) => t.returnToTransferee('failed', causeOf(s), true),
    cancel: async (t) => {
      await t.hangUpTarget();
      await t.returnToTransferee('cancelled');
    },
    transferor_gone: (t) => t.goPartial(),
    transferee_gone: (t) => t.loseTransferee(),
  },
  consulting: {
    transferor_gone: (t) => t.complete(t.target!),
    target_gone: (t, s) => t.returnToTransferee('target_hung_up', causeOf(s)),
    cancel: async (t) => {
      await t.hangUpTarget();
      await t.returnToTransferee('cancelled');
    },
    transferee_gone: (t) => t.keepTransferorWithTarget(),
  },
  partial: {
    target_answered: (t) => t.complete(t.target!),
    target_gone: (t, s) => t.startRecall(causeOf(s)),
    // Alice is gone, so a cancel (from the API) can only mean "give Bob back to Alice".
    cancel: async (t) => {
      await t.hangUpTarget();
      await t.startRecall(Cause.NORMAL_CLEARING);
    },
    transferee_gone: async (t) => {
      await t.hangUpTarget();
      await t.finish({ outcome: 'abandoned' });
    },
  },
  recalling: {
    recall_answered: (t) => t.complete(t.recall!, 'recalled'),
    recall_gone: (t, s) => t.recallFailed(causeOf(s)),
    transferee_gone: async (t) => {
      await t.hangUpRecall();
      await t.finish({ outcome: 'abandoned' });
    },
  },
  recall_wait: {
    recall_timer: (t) => t.dialRecall(),
    transferee_gone: (t) => t.finish({ outcome: 'abandoned' }),
  },
  transferee_gone: {
    target_answered: (t) => t.keepTransferorWithTarget(),
    target_gone: (t, s) => t.finish({ outcome: 'transferee_gone', cause: causeOf(s), farewell: t.transferor }),
    cancel: async (t) => {
      await t.hangUpTarget();
      await t.finish({ outcome: 'cancelled', farewell: t.transferor });
    },
    transferor_gone: async (t) => {
      await t.hangUpTarget();
      await t.finish({ outcome: 'abandoned' });
    },
  },
  ended: {},
};

function causeOf(s: Stimulus): number {
  return 'cause' in s ? s.cause : Cause.NORMAL_CLEARING;
}

/**
 * Where each living party belongs in each state: `main`, the call's bridge
 * (Bob holding, or Bob with Mary); `consult`, the consultation (Alice and
 * Mary). What a recovery puts back when konami stopped between two steps.
 */
const PLACES: Record<TransferState, Partial<Record<'transferor' | 'target' | 'transferee', 'main' | 'consult'>>> = {
  calling: { transferor: 'consult', transferee: 'main' },
  consulting: { transferor: 'consult', target: 'consult', transferee: 'main' },
  partial: { transferee: 'main' },
  recalling: { transferee: 'main' },
  recall_wait: { transferee: 'main' },
  transferee_gone: { transferor: 'consult' },
  ended: {},
};

/**
 * The channel a state waits for. After a restart, a transfer in that state
 * takes back the channel its call kept for it; without one, that channel
 * failed while konami was away.
 */
const AWAITS: Partial<Record<TransferState, 'target' | 'recall'>> = {
  calling: 'target',
  partial: 'target',
  transferee_gone: 'target',
  recalling: 'recall',
};

/** A short failure tone (Asterisk's core sounds). */
export const FAILURE_MEDIA = 'sound:beeperr';

/**
 * Everything a transfer is, as plain data: kept with its call so a konami
 * started again can rebuild it (legs are named by channel id).
 */
export interface TransferRecord {
  id: string;
  state: TransferState;
  outcome?: TransferOutcome;
  transferor: string;
  transferee: string;
  target?: string;
  recall?: string;
  recall_attempts: number;
  /** When the next recall attempt is due (state recall_wait). */
  recall_due_at?: string;
  target_number: string;
  endpoint: string;
  main_bridge: string;
  consult_bridge: string;
  consult_created: boolean;
  moh_on: boolean;
  /** Ringing playbacks konami started: [channel id, playback id]. */
  ringing: Array<[string, string]>;
  settings: TransferSettings;
  started_at: string;
  updated_at: string;
}

/** Which bridge each party of a transfer belongs in, per state: what a restart puts right. */
export interface BridgePicture {
  /** Bridge ids that exist. */
  bridges: ReadonlySet<string>;
  /** The bridge each channel is in. */
  bridgeOf: ReadonlyMap<string, string>;
}

export class Transfer {
  readonly id: string;
  state: TransferState = 'calling';
  outcome: TransferOutcome | undefined;
  target: Leg | undefined;
  recall: Leg | undefined;
  recallAttempts = 0;
  readonly consultBridge: string;
  private readonly startedAt: Date;
  private updatedAt: Date;
  private recallDueAt: Date | undefined;
  private readonly log: Logger;
  private readonly timers = new Set<unknown>();
  /** Ringing playbacks konami started, by channel id. */
  private readonly ringing = new Map<string, string>();
  private mohOn = false;
  private consultCreated = false;

  constructor(
    private readonly host: TransferHost,
    readonly transferor: Leg,
    readonly transferee: Leg,
    readonly mainBridge: string,
    readonly targetNumber: string,
    readonly endpoint: string,
    readonly settings: TransferSettings,
    kept?: { id: string; consultBridge: string; startedAt: Date },
  ) {
    this.id = kept?.id ?? randomUUID();
    this.consultBridge = kept?.consultBridge ?? `konami-${randomUUID()}`;
    this.startedAt = kept?.startedAt ?? new Date();
    this.updatedAt = this.startedAt;
    this.log = host.log.child({ transfer_id: this.id, target: targetNumber });
  }

  /** Rebuilds a kept transfer; `leg` finds the call's legs by channel id. Timers are armed again. */
  static restore(host: TransferHost, r: TransferRecord, leg: (id: string | undefined) => Leg | undefined): Transfer | undefined {
    const transferor = leg(r.transferor);
    const transferee = leg(r.transferee);
    if (!transferor || !transferee) return undefined;
    const t = new Transfer(host, transferor, transferee, r.main_bridge, r.target_number, r.endpoint, { ...SETTINGS_BEFORE, ...r.settings },
      { id: r.id, consultBridge: r.consult_bridge, startedAt: new Date(r.started_at) });
    t.state = r.state;
    t.outcome = r.outcome;
    t.target = leg(r.target);
    t.recall = leg(r.recall);
    t.recallAttempts = r.recall_attempts;
    t.updatedAt = new Date(r.updated_at);
    t.consultCreated = r.consult_created;
    t.mohOn = r.moh_on;
    for (const [channel, playback] of r.ringing) t.ringing.set(channel, playback);
    t.recallDueAt = r.recall_due_at ? new Date(r.recall_due_at) : undefined;
    return t;
  }

  /** Arms again the timer a kept transfer was waiting on (the next recall), for the time it had left. */
  armRestoredTimers(): void {
    if (this.state !== 'recall_wait') return;
    const due = this.recallDueAt?.getTime() ?? Date.now();
    this.timer(Math.max(0, due - Date.now()), { kind: 'recall_timer' });
  }

  record(): TransferRecord {
    return {
      id: this.id,
      state: this.state,
      outcome: this.outcome,
      transferor: this.transferor.id,
      transferee: this.transferee.id,
      target: this.target?.id,
      recall: this.recall?.id,
      recall_attempts: this.recallAttempts,
      recall_due_at: this.recallDueAt?.toISOString(),
      target_number: this.targetNumber,
      endpoint: this.endpoint,
      main_bridge: this.mainBridge,
      consult_bridge: this.consultBridge,
      consult_created: this.consultCreated,
      moh_on: this.mohOn,
      ringing: [...this.ringing],
      settings: { ...this.settings },
      started_at: this.startedAt.toISOString(),
      updated_at: this.updatedAt.toISOString(),
    };
  }

  /**
   * After konami lost sight of the call (restart, lost connection, another
   * instance's takeover) and played the events it missed: a state waiting
   * for a channel the transfer does not have learns that it failed
   * (answers true: the parties moved, the picture is stale); otherwise, with
   * `picture`, every living party is put into the bridge PLACES says, in case
   * konami stopped between two steps. Every step is idempotent.
   */
  async recover(picture: BridgePicture | undefined): Promise<boolean> {
    const awaited = AWAITS[this.state];
    if (awaited && this[awaited] === undefined) {
      this.log.warn({ state: this.state, missing: awaited }, 'transfer without its channel after a restart: that channel failed');
      await this.on(awaited === 'target' ? { kind: 'target_gone', cause: Cause.NORMAL_CLEARING } : { kind: 'recall_gone', cause: Cause.NORMAL_CLEARING });
      return true;
    }
    if (!picture) return false;
    for (const [party, where] of Object.entries(PLACES[this.state]) as Array<['transferor' | 'target' | 'transferee', 'main' | 'consult']>) {
      const bridge = where === 'main' ? this.mainBridge : this.consultBridge;
      if ((await this.host.placeIn(this[party], bridge, picture)) && where === 'consult') this.consultCreated = true;
    }
    return false;
  }

  /**
   * Entry of the first state. Attended: Bob holds, Alice waits ringing, Mary
   * is called showing Alice. Blind: Alice is hung up at once and the transfer
   * starts where Alice would have left while Mary rang (partial): Bob hears
   * ringing, Mary is called showing Bob, and if Mary fails Alice is called back.
   */
  async start(): Promise<void> {
    const { transferor: alice, transferee: bob } = this;
    const blind = this.settings.type === 'blind';
    // The target's channel is made while the parties are placed, not after, and asked for first:
    // it is the longest way. Her answer is a stimulus queued behind this step: she never answers
    // into an empty bridge, and Bob never hears her.
    const shownTo = blind ? bob : alice;
    // Kept before her channel is asked for: a restart in between finds a blind transfer, not a consultation.
    if (blind) this.enter('partial');
    const making = this.makeTarget(shownTo, () => placing);
    const placing = blind ? this.placeForBlind() : this.placeForConsultation();
    this.log.info({ transferor: alice.role, endpoint: this.endpoint, type: this.settings.type }, 'transfer started');
    const [mary] = await Promise.all([making, placing]);
    if (!mary) {
      await this.on({ kind: 'target_gone', cause: Cause.UNALLOCATED });
      return;
    }
    this.target = mary;
  }

  /**
   * Makes the target's channel and dials her as soon as it is in Stasis, not
   * waiting for the placing to end (`placed`, read only once her channel is
   * made); if the placing ends first, her StasisStart dials her in its turn.
   */
  private async makeTarget(shownTo: Leg, placed: () => Promise<void>): Promise<Leg | undefined> {
    const leg = await this.host.originate('target', this.endpoint, this.targetNumber, shownTo.caller, shownTo.id);
    if (leg && (await Promise.race([this.host.entered(leg), placed().then(() => false)]))) await this.dialLeg(leg);
    return leg;
  }

  /** Blind (the transfer is already partial): the transferor leaves at once, the transferee hears ringing. */
  private async placeForBlind(): Promise<void> {
    await this.hangUp(this.transferor);
    await this.ring(this.transferee);
  }

  /**
   * Attended: the transferor moves to the consultation bridge while the
   * transferee is held with music, then hears ringing (a playback on a
   * channel outside a bridge would hold back its later commands).
   */
  private async placeForConsultation(): Promise<void> {
    const { ari } = this.host;
    const { transferor: alice, transferee: bob } = this;
    await this.host.step('create consultation bridge',
      ari.createBridge({ bridgeId: this.consultBridge, type: 'mixing,dtmf_events', name: `konami/${this.host.callId}/consult` }));
    this.consultCreated = true;
    await Promise.all([
      this.host.step('move transferor to consultation', ari.addChannel(this.consultBridge, [alice.id], { absorbDTMF: true })),
      bob.gone ? undefined : this.host.step('hold transferee', ari.startBridgeMoh(this.mainBridge, this.settings.mohClass)).then(() => {
        this.mohOn = true;
      }),
    ]);
    await this.ring(alice);
  }

  /** Feeds one stimulus through the table; false when this state has no row for it (nothing was done). */
  async on(s: Stimulus): Promise<boolean> {
    const row = TABLE[this.state][s.kind];
    if (!row) {
      this.log.debug({ state: this.state, stimulus: s.kind }, 'stimulus ignored in this state');
      return false;
    }
    this.log.debug({ state: this.state, stimulus: s.kind }, 'transfer stimulus');
    await row(this, s);
    return true;
  }

  /** A transfer channel (target or recall) reached Stasis: dial it. */
  async dialLeg(leg: Leg): Promise<void> {
    // A recall, and a blind transfer's target, are called on Bob's behalf: Alice is gone.
    const onBehalf = leg.kind === 'recall' || this.settings.type === 'blind' ? this.transferee : this.transferor;
    leg.dialled = true;
    // Asterisk shows the dialled phone the caller id of the channel named as
    // caller. Only a caller's own channel carries its own caller id (a called
    // party's channel carries the caller's, as Dial() does); for anyone else
    // the identity set when the channel was made stands.
    const caller = onBehalf.kind === 'a' && !onBehalf.gone ? onBehalf.id : undefined;
    await this.host.step(`dial ${leg.kind}`, this.host.ari.dial(leg.id, { caller, timeout: this.settings.ringTimeout }));
  }

  owns(leg: Leg): boolean {
    return leg === this.target || leg === this.recall;
  }

  /**
   * After a restart: the channel the call kept for this transfer (the newest
   * target or recall still up) that the transfer did not hear of because
   * konami stopped in between, becomes its target or recall again.
   */
  adopt(legs: Iterable<Leg>): Leg | undefined {
    const kind = AWAITS[this.state];
    if (!kind || this[kind] !== undefined) return undefined;
    // Only the newest of its kind (kept before its channel was made), never an older one that took a party's place.
    let found: Leg | undefined;
    for (const leg of legs) if (leg.kind === kind) found = leg;
    if (!found || found.gone || found.hangupRequested || found.role !== undefined) return undefined;
    if (kind === 'recall') this.recall = found;
    else this.target = found;
    return found;
  }

  /** Who hears a party's digits during the transfer. */
  peerOf(leg: Leg): Leg | undefined {
    const talking = this.state === 'consulting';
    if (leg === this.transferor) return talking ? this.target : undefined;
    if (leg === this.target) return talking ? this.transferor : undefined;
    return undefined;
  }

  snapshot(): TransferSnapshot {
    return {
      id: this.id,
      call_id: this.host.callId,
      state: this.state,
      outcome: this.outcome,
      target: this.targetNumber,
      transferor: { role: this.transferor.role ?? '', channel: this.transferor.id },
      transferee: { role: this.transferee.role ?? '', channel: this.transferee.id },
      target_channel: this.target?.id,
      target_answered: this.target?.answered ?? false,
      recall_channel: this.recall?.id,
      recall_attempts: this.recallAttempts,
      main_bridge: this.mainBridge,
      consult_bridge: this.consultBridge,
      settings: { ...this.settings },
      started_at: this.startedAt.toISOString(),
      updated_at: this.updatedAt.toISOString(),
    };
  }

  /** The call ended under the transfer (shutdown, say): timers cleared, nothing more is done. */
  dispose(): void {
    for (const t of this.timers) this.host.cancel(t);
    this.timers.clear();
    if (this.state !== 'ended') {
      this.outcome = 'abandoned';
      this.enter('ended');
    }
  }

  /**
   * Plays a short tone to a party. A party hearing ringing would only hear it
   * after the ringing (playbacks queue), so the ringing is restarted behind it.
   */
  async cue(leg: Leg, media: string): Promise<void> {
    const ringing = this.ringing.get(leg.id);
    if (!ringing) {
      await this.host.play(leg, media, 'tone');
      return;
    }
    await this.host.step('stop ringing tone', this.host.ari.stopPlayback(ringing));
    const playbackId = `konami-ring-${randomUUID()}`;
    this.ringing.set(leg.id, playbackId);
    await this.host.play(leg, [media, this.settings.ringback], 'tone, then ringing again', playbackId);
  }

  /** The call is stopping every playback of a party: the ringing this transfer plays it, if any, to stop too (and forget). */
  silenced(leg: Leg): string | undefined {
    const ringing = this.ringing.get(leg.id);
    this.ringing.delete(leg.id);
    return ringing;
  }

  /** Bridges the transfer created that still exist. */
  bridges(): string[] {
    return this.consultCreated ? [this.consultBridge] : [];
  }

  // ---- actions used by the table ----

  async consult(): Promise<void> {
    await this.stopRinging(this.transferor);
    await this.host.step('join target to consultation', this.host.ari.addChannel(this.consultBridge, [this.target!.id], { absorbDTMF: true }));
    this.enter('consulting');
  }

  /** Alice is back with Bob (Mary failed, hung up, or the transfer was cancelled). */
  async returnToTransferee(outcome: TransferOutcome, cause?: number, tone = false): Promise<void> {
    const { ari } = this.host;
    await this.stopRinging(this.transferor);
    await this.unhold();
    await this.host.step('return transferor', ari.addChannel(this.mainBridge, [this.transferor.id], { absorbDTMF: true }));
    await this.destroyConsultation();
    if (tone) await this.host.play(this.transferor, FAILURE_MEDIA, 'failure tone');
    await this.finish({ outcome, cause });
  }

  /** Alice left while Mary rings: Bob hears ringing instead of music. */
  async goPartial(): Promise<void> {
    await this.stopRinging(this.transferor);
    await this.destroyConsultation();
    await this.unhold();
    this.enter('partial');
    await this.ring(this.transferee);
  }

  /** `joiner` (Mary, or Alice called back) takes Alice's place beside Bob. */
  async complete(joiner: Leg, outcome: TransferOutcome = 'completed'): Promise<void> {
    await this.stopRinging(this.transferee);
    await this.unhold();
    await this.host.step('join transferee', this.host.ari.addChannel(this.mainBridge, [joiner.id], { absorbDTMF: true }));
    await this.destroyConsultation();
    await this.finish({ outcome, joiner });
  }

  /** Bob left while Mary rang: Alice waits for Mary alone. */
  async loseTransferee(): Promise<void> {
    await this.unhold();
    this.enter('transferee_gone');
  }

  /** Bob is gone and Mary is (or now is) answered: Alice and Mary go on as the call. */
  async keepTransferorWithTarget(): Promise<void> {
    const mary = this.target!;
    await this.stopRinging(this.transferor);
    if (this.state === 'transferee_gone') {
      await this.host.step('join target to transferor', this.host.ari.addChannel(this.consultBridge, [mary.id], { absorbDTMF: true }));
    }
    await this.unhold();
    this.consultCreated = false; // the consultation bridge becomes the call's bridge
    await this.finish({ outcome: 'transferee_gone', keepConsultation: true });
  }

  async hangUpTarget(): Promise<void> {
    await this.hangUp(this.target);
  }

  async hangUpRecall(): Promise<void> {
    await this.hangUp(this.recall);
  }

  /** Mary failed after Alice left: call Alice back, or give up. */
  async startRecall(cause: number): Promise<void> {
    this.log.info({ cause }, 'target failed after the transferor left: recalling the transferor');
    if (this.settings.recallAttempts < 1 || !this.recallEndpoint()) {
      await this.recallFailed(cause);
      return;
    }
    await this.dialRecall();
  }

  async dialRecall(): Promise<void> {
    this.recallDueAt = undefined;
    this.recallAttempts++;
    this.enter('recalling');
    const alice = this.transferor;
    const endpoint = this.recallEndpoint();
    if (endpoint === undefined) {
      await this.recallFailed(Cause.UNALLOCATED);
      return;
    }
    this.log.info({ attempt: this.recallAttempts, endpoint }, 'recalling the transferor');
    // Alice's phone shows Bob, the party she is being called back to.
    const recall = await this.host.originate('recall', endpoint, alice.number, this.transferee.caller, this.transferee.id);
    if (!recall) {
      await this.recallFailed(Cause.UNALLOCATED);
      return;
    }
    this.recall = recall;
  }

  async recallFailed(cause: number): Promise<void> {
    this.recall = undefined;
    if (this.recallAttempts < this.settings.recallAttempts && this.recallEndpoint()) {
      this.enter('recall_wait');
      this.recallDueAt = new Date(Date.now() + this.settings.recallDelay * 1000);
      this.timer(this.settings.recallDelay * 1000, { kind: 'recall_timer' });
      return;
    }
    this.log.warn({ cause, attempts: this.recallAttempts }, 'transfer failed and the transferor cannot be reached');
    await this.stopRinging(this.transferee);
    await this.finish({ outcome: 'recall_failed', cause, farewell: this.transferee });
  }

  /** Hands the call back with its new parties, clearing every timer. */
  async finish(end: {
    outcome: TransferOutcome;
    cause?: number;
    joiner?: Leg;
    farewell?: Leg;
    keepConsultation?: boolean;
  }): Promise<void> {
    if (this.state === 'ended') return;
    for (const t of this.timers) this.host.cancel(t);
    this.timers.clear();
    for (const leg of [this.transferor, this.transferee]) await this.stopRinging(leg);
    await this.unhold();
    if (!end.keepConsultation) await this.destroyConsultation();
    this.outcome = end.outcome;
    this.enter('ended');
    const alice = this.transferor;
    const bob = this.transferee;
    let parties: [Leg | undefined, Leg | undefined]; // [alice's place, bob's place]
    let bridgeId = this.mainBridge;
    switch (end.outcome) {
      case 'completed':
      case 'recalled':
        parties = [end.joiner, bob];
        break;
      case 'failed':
      case 'cancelled':
      case 'target_hung_up':
        parties = end.farewell ? [alice, undefined] : [alice, bob];
        break;
      case 'transferee_gone':
        parties = [alice, end.farewell ? undefined : this.target];
        bridgeId = end.keepConsultation ? this.consultBridge : this.mainBridge;
        break;
      case 'recall_failed':
        parties = [undefined, bob];
        break;
      case 'abandoned':
        parties = [undefined, undefined];
        break;
    }
    const roleA = alice.role === 'a';
    const result: TransferResult = {
      outcome: end.outcome,
      cause: end.cause,
      parties: roleA ? { a: parties[0], b: parties[1] } : { a: parties[1], b: parties[0] },
      bridgeId,
      farewell: end.farewell,
    };
    this.log.info({ outcome: end.outcome, cause: end.cause }, 'transfer ended');
    await this.host.ended(this, result);
  }

  // ---- helpers ----

  private enter(state: TransferState): void {
    this.log.debug({ from: this.state, to: state }, 'transfer state');
    this.state = state;
    this.updatedAt = new Date();
  }

  /** How Alice is called back: as konami reached her (or her device), else, where the operator trusts caller ids, her number. */
  private recallEndpoint(): string | undefined {
    const alice = this.transferor;
    if (alice.endpoint) return alice.endpoint;
    return this.settings.recallByNumber ? dialString(this.settings.dialTemplate, alice.number) : undefined;
  }

  private timer(ms: number, s: Stimulus): void {
    const handle = this.host.later(ms, async () => {
      this.timers.delete(handle);
      await this.on(s);
    });
    this.timers.add(handle);
  }

  private async ring(leg: Leg): Promise<void> {
    if (leg.gone || this.ringing.has(leg.id)) return;
    const playbackId = `konami-ring-${randomUUID()}`;
    this.ringing.set(leg.id, playbackId);
    await this.host.play(leg, this.settings.ringback, 'ringing tone', playbackId);
  }

  private async stopRinging(leg: Leg): Promise<void> {
    const playbackId = this.ringing.get(leg.id);
    if (!playbackId) return;
    this.ringing.delete(leg.id);
    if (!leg.gone) await this.host.step('stop ringing tone', this.host.ari.stopPlayback(playbackId));
  }

  private async unhold(): Promise<void> {
    if (!this.mohOn) return;
    this.mohOn = false;
    await this.host.step('stop music on hold', this.host.ari.stopBridgeMoh(this.mainBridge));
  }

  private async destroyConsultation(): Promise<void> {
    if (!this.consultCreated) return;
    this.consultCreated = false;
    await this.host.step('destroy consultation bridge', this.host.ari.destroyBridge(this.consultBridge));
  }

  private async hangUp(leg: Leg | undefined): Promise<void> {
    if (leg) await this.host.hangUp(leg);
  }
}
