// The Stasis application: turns entries from the dialplan into calls and
// routes every ARI event to the call that owns the channel.
import type { Logger } from '../log.js';
import { tolerateGone, type Ari } from './ari.js';
import { channelIdsOf, type AriEvent, type StasisStart } from './ari-types.js';
import { Call, type CallOwner, type CallSettings } from './call.js';
import { Cause } from './causes.js';
import { applyDialTemplate, isOwnLeg, parseEntryArgs } from './entry.js';

export interface AppSettings extends CallSettings {
  dialTemplate: string;
}

export class StasisApp implements CallOwner {
  private readonly calls = new Map<string, Call>();
  private readonly owners = new Map<string, Call>();
  private readonly endedWaiters = new Set<() => void>();
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

  ended(call: Call): void {
    this.calls.delete(call.id);
    for (const [id, owner] of this.owners) if (owner === call) this.owners.delete(id);
    if (this.calls.size === 0) for (const w of this.endedWaiters) w();
  }

  /** Hangs up one channel; one already gone is no error. */
  async hangup(channelId: string, cause: number): Promise<void> {
    await tolerateGone(this.ari.hangup(channelId, cause));
  }

  /** New calls are refused (hung up with a temporary failure) from now on. */
  stopAccepting(): void {
    this.accepting = false;
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
    if (!this.accepting) {
      log.warn('shutting down: new call refused');
      void this.ari.hangup(channel.id, Cause.TEMPORARY_FAILURE).catch(() => undefined);
      return;
    }
    if (!args.account) log.warn('no account= argument: the call is connected without feature codes');
    const endpoint = args.dial ?? applyDialTemplate(this.settings.dialTemplate, channel.dialplan.exten);
    const codes = this.settings.features?.matcher(args.account) !== undefined;
    log.info({ caller: channel.caller, exten: channel.dialplan.exten, endpoint, feature_codes: codes }, 'call entered');
    const call = new Call(this.ari, this, this.settings, log, { channel, account: args.account, endpoint });
    this.calls.set(call.id, call);
    this.owners.set(channel.id, call);
    void call.start();
  }
}
