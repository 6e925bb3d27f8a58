// The Stasis application: turns entries from the dialplan into calls and
// routes every ARI event to the call that owns the channel.
import type { Logger } from '../log.js';
import { tolerateGone, type Ari } from './ari.js';
import { channelIdsOf, type AriEvent, type ChannelSnapshot, type StasisStart } from './ari-types.js';
import { Call, type CallOwner, type CallRecord, type CallSettings } from './call.js';
import { recoverAll, type ReconcileReport } from './recovery.js';
import { Cause } from './causes.js';
import { DEFAULT_ROUTE, dialString } from './dial.js';
import { isOwnLeg, parseEntryArgs } from './entry.js';

export type { ReconcileReport } from './recovery.js';

export interface AppSettings extends CallSettings {
  /** How long a channel of konami's application that no call knows may wait for its StasisStart (ms). */
  strayGraceMs?: number;
}

export class StasisApp implements CallOwner {
  private readonly calls = new Map<string, Call>();
  private readonly owners = new Map<string, Call>();
  private readonly endedWaiters = new Set<() => void>();
  private readonly watchers = new Set<(call: Call) => void>();
  private accepting = true;

  constructor(
    private readonly ari: Ari,
    private readonly settings: AppSettings,
    private readonly log: Logger,
  ) {}

  /** Feed every ARI event of the app here. */
  handle(e: AriEvent): void {
    if (e.type === 'StasisStart' && !this.owners.has(e.channel.id) && !isOwnLeg(e.args)) {
      this.enter(e);
      return;
    }
    for (const id of channelIdsOf(e)) {
      const call = this.owners.get(id);
      if (call) {
        void call.dispatch(e);
        return;
      }
    }
  }

  get activeCalls(): ReadonlyMap<string, Call> {
    return this.calls;
  }

  callOf(channelId: string): Call | undefined {
    return this.owners.get(channelId);
  }

  claim(channelId: string, call: Call): void {
    this.owners.set(channelId, call);
  }

  changed(call: Call): void {
    // A watcher's fault is its own: the call's step goes on.
    for (const w of this.watchers) {
      try {
        w(call);
      } catch (err) {
        this.log.error({ err, call_id: call.id }, 'a watcher of calls failed');
      }
    }
  }

  /** Called after every change of any call (its state, its parties, its transfer); returns how to stop. */
  watch(watcher: (call: Call) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  ended(call: Call): void {
    this.calls.delete(call.id);
    for (const [id, owner] of this.owners) if (owner === call) this.owners.delete(id);
    if (this.calls.size === 0) for (const w of this.endedWaiters) w();
  }

  /** Hangs up one channel; one already gone is no error. */
  async hangup(channelId: string, cause: number): Promise<void> {
    await tolerateGone(this.ari.hangup(channelId, cause));
  }

  /**
   * Takes back the calls a previous konami process kept (before the ARI
   * connection starts, so their events find them); reconcile() then brings
   * them up to date.
   */
  restore(records: ReadonlyArray<{ id: string; state: unknown }>): number {
    let n = 0;
    for (const { id, state } of records) {
      const record = state as CallRecord;
      if (record?.v !== 1 || record.id !== id || !Array.isArray(record.legs)) {
        this.log.error({ call_id: id }, 'kept call state not understood: dropped (its channels are hung up as unknown)');
        this.settings.journal?.remove(id);
        continue;
      }
      const call = Call.restore(this.ari, this, this.settings, this.log.child({ call_id: id, account: record.account ?? null }), record);
      if (call.phase === 'ended') continue;
      this.calls.set(call.id, call);
      for (const channel of call.channelIds()) this.owners.set(channel, call);
      call.log.info({ phase: call.phase, transfer: call.transfer?.state ?? null }, 'call taken back after a restart');
      n++;
    }
    return n;
  }

  /**
   * Compares every call with what Asterisk reports now and plays the events
   * konami missed; clears what no call knows (recovery.ts). Run after every
   * (re)connection, and after calls were taken back.
   */
  reconcile(): Promise<ReconcileReport> {
    return recoverAll({
      log: this.log,
      ari: this.ari,
      calls: () => this.calls.values(),
      owns: (id) => this.owners.has(id),
      inApp: (ch) => this.inApp(ch),
      strayGraceMs: this.settings.strayGraceMs ?? 1000,
    });
  }

  /** The channel is in konami's Stasis application (Asterisk shows Stasis(<app>,...) as what it runs). */
  private inApp(ch: ChannelSnapshot): boolean {
    return ch.dialplan.app_name === 'Stasis' && (ch.dialplan.app_data ?? '').split(',')[0] === this.settings.app;
  }

  /** New calls are refused (hung up with a temporary failure) from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Transfers in progress now. */
  get transfersInFlight(): number {
    let n = 0;
    for (const call of this.calls.values()) if (call.transfer) n++;
    return n;
  }

  /** Resolves when no transfer is in progress, or after timeoutMs; says which. */
  async transfersSettled(timeoutMs: number, everyMs = 100): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.transfersInFlight > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(everyMs, Math.max(1, deadline - Date.now()))));
    }
    return true;
  }

  /** Resolves when every call has run every step queued so far (and kept its record). */
  async settled(): Promise<void> {
    await Promise.all([...this.calls.values()].map((c) => c.settled()));
  }

  /** Resolves when no call is left, or after timeoutMs; says which. */
  async drained(timeoutMs: number): Promise<boolean> {
    if (this.calls.size === 0) return true;
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.endedWaiters.delete(waiter);
        resolve(v);
      };
      const waiter = () => done(true);
      const t = setTimeout(() => done(false), timeoutMs);
      this.endedWaiters.add(waiter);
    });
  }

  private enter(e: StasisStart): void {
    const channel = e.channel;
    const args = parseEntryArgs(e.args);
    const log = this.log.child({ call_id: channel.id, account: args.account ?? null });
    if (args.unknown.length > 0) log.warn({ args: args.unknown }, 'unknown or invalid Stasis arguments ignored');
    const refuse = (cause: number, why: string, details: object = {}) => {
      log.warn({ ...details, cause }, why);
      void this.ari.hangup(channel.id, cause).catch(() => undefined);
    };
    if (!this.accepting) return refuse(Cause.TEMPORARY_FAILURE, 'shutting down: new call refused');
    if (args.refused.length > 0) return refuse(Cause.CALL_REJECTED, 'Stasis arguments not to be trusted: call refused', { problems: args.refused });
    if (!args.account) log.warn('no account= argument: the call is connected without feature codes');
    const template = this.settings.dialRoutes.template(DEFAULT_ROUTE);
    const endpoint = args.dial ?? (template === undefined ? undefined : dialString(template, channel.dialplan.exten));
    if (endpoint === undefined) {
      return refuse(Cause.INVALID_NUMBER_FORMAT, 'the dialled extension is not a number konami dials: call refused', { exten: channel.dialplan.exten });
    }
    const codes = this.settings.features?.matcher(args.account) !== undefined;
    log.info({ caller: channel.caller, exten: channel.dialplan.exten, endpoint, feature_codes: codes }, 'call entered');
    const call = new Call(this.ari, this, this.settings, log, { entry: { channel, account: args.account, endpoint } });
    this.calls.set(call.id, call);
    this.owners.set(channel.id, call);
    void call.start();
  }
}
