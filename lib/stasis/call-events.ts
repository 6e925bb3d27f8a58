// Live updates of calls, as Kazoo names its channel events: each change of a
// call becomes one event per party whose view changed, carrying that party's
// channel as GET .../channels shows it. A subscriber sees only the calls its
// scope admits (an account's, or a user's), judged at each event. Nothing is
// worked out for the calls of an account no one listens to.
import type { Logger } from '../log.js';
import type { Call } from './call.js';
import { belongsTo, NO_OWNERS, view, type ChannelView, type OwnerOf, type Scope } from './control.js';

export type ChannelEventName =
  /** A party appeared: the caller entering, the called party dialled, a transfer's target taking a place. */
  | 'CHANNEL_CREATE'
  /** The call was answered. */
  | 'CHANNEL_ANSWER'
  /** The party is connected to another party than before (after a transfer). */
  | 'CHANNEL_BRIDGE'
  /** A transfer started, changed state or ended: sent for its transferor... */
  | 'CHANNEL_TRANSFEROR'
  /** ...and for its transferee (and for any other party of the call). */
  | 'CHANNEL_TRANSFEREE'
  /** The party left the call. */
  | 'CHANNEL_DESTROY';

export interface ChannelEvent {
  event_name: ChannelEventName;
  call_id: string;
  channel: ChannelView;
}

export interface Subscription {
  /** The account listened to (fixed for the subscription's life). */
  readonly account: string;
  /** The user listening, if a user's token opened it. */
  readonly user?: string;
  /** The scope now (a user's numbers may change); undefined: the subscriber may no longer see anything. */
  scope(): Scope | undefined;
  send(event: ChannelEvent): void;
  /** Ends the subscriber's stream (konami stopping). */
  close(): void;
}

/** What the hub needs of the calls: every change of one. */
export interface CallWatch {
  watch(watcher: (call: Call) => void): () => void;
}

interface Seen {
  view: ChannelView;
  number: string;
}

export class CallEvents {
  /** The views last seen of each call's parties, with each party's number (only for accounts listened to). */
  private readonly seen = new Map<string, Map<string, Seen>>();
  private readonly byAccount = new Map<string, Set<Subscription>>();
  private readonly stop: () => void;

  constructor(calls: CallWatch, private readonly owners: OwnerOf = NO_OWNERS, private readonly log?: Logger) {
    this.stop = calls.watch((call) => this.changed(call));
  }

  subscribe(s: Subscription): () => void {
    let set = this.byAccount.get(s.account);
    if (!set) this.byAccount.set(s.account, (set = new Set()));
    set.add(s);
    return () => {
      set.delete(s);
      if (set.size === 0 && this.byAccount.get(s.account) === set) this.byAccount.delete(s.account);
    };
  }

  /** Streams open on an account: its own (user undefined), or one user's, or (user '*') all its users'. */
  count(account: string, user?: string): number {
    let n = 0;
    for (const s of this.byAccount.get(account) ?? []) if (user === '*' ? s.user !== undefined : s.user === user) n++;
    return n;
  }

  /** Ends every stream (konami stopping) and stops listening to calls. */
  close(): void {
    this.stop();
    for (const set of [...this.byAccount.values()]) for (const s of [...set]) s.close();
    this.byAccount.clear();
    this.seen.clear();
  }

  private changed(call: Call): void {
    const listeners = call.account === undefined ? undefined : this.byAccount.get(call.account);
    if (!listeners || listeners.size === 0) {
      // No one listens: a later listener first hears the parties as new.
      this.seen.delete(call.id);
      return;
    }
    const before = this.seen.get(call.id) ?? new Map<string, Seen>();
    const now = new Map<string, Seen>();
    if (call.phase !== 'ended') {
      for (const leg of [call.a, call.b]) if (leg && !leg.gone) now.set(leg.id, { view: view(call, leg, this.owners), number: leg.number });
    }
    const events: Array<{ event: ChannelEvent; number: string }> = [];
    for (const [id, { view: v, number }] of now) {
      const was = before.get(id);
      const name = was ? changeOf(was.view, v) : 'CHANNEL_CREATE';
      if (name) events.push({ event: { event_name: name, call_id: call.id, channel: v }, number });
    }
    for (const [id, { view: was, number }] of before) {
      if (now.has(id)) continue;
      events.push({ event: { event_name: 'CHANNEL_DESTROY', call_id: call.id, channel: { ...was, state: 'ending', other_leg: null } }, number });
    }
    if (now.size > 0) this.seen.set(call.id, now);
    else this.seen.delete(call.id);
    if (events.length === 0) return;
    for (const s of [...listeners]) {
      try {
        const scope = s.scope();
        if (!scope) continue;
        const whole = belongsTo(call, scope);
        // A user also hears of their own party leaving a call that is no longer theirs (after a transfer).
        for (const { event, number } of events) if (whole || scope.numbers?.has(number)) s.send(event);
      } catch (err) {
        // One listener's fault is its own: the call, and the other listeners, go on.
        this.log?.error({ err, call_id: call.id }, 'an event listener failed');
      }
    }
  }
}

/** What changed between two views of a party, as one event name (none: nothing a subscriber follows). */
function changeOf(was: ChannelView, v: ChannelView): ChannelEventName | undefined {
  if (JSON.stringify(was.transfer) !== JSON.stringify(v.transfer) || JSON.stringify(was.last_transfer) !== JSON.stringify(v.last_transfer)) {
    const t = v.transfer ?? v.last_transfer;
    return t?.transferor === v.id ? 'CHANNEL_TRANSFEROR' : 'CHANNEL_TRANSFEREE';
  }
  if (!was.answered && v.answered) return 'CHANNEL_ANSWER';
  // A party left alone is told by the other's CHANNEL_DESTROY.
  if (was.other_leg !== v.other_leg && v.other_leg !== null) return 'CHANNEL_BRIDGE';
  return undefined;
}
