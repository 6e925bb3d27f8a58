// What the API may do with calls: the account's view of its calls and the
// actions on them. Every action runs in the call's own queue, like a code.
import type { MetaflowConfig } from '../metaflow/types.js';
import type { Call, Leg } from './call.js';
import { Cause } from './causes.js';
import type { TransferRefusal } from './features.js';
import { requestTransfer, type TransferData } from './modules/transfer.js';
import type { TransferSnapshot } from './transfer.js';

/** Seconds from year 0 to 1970, as Kazoo counts its timestamps (Gregorian seconds). */
const GREGORIAN_OFFSET_S = 62_167_219_200;

export interface ChannelView {
  /** This party's channel id (Kazoo's call id). */
  id: string;
  /** The same, under Kazoo's name. */
  uuid: string;
  /** The call it belongs to (the caller's channel id). */
  call_id: string;
  /** The other party's channel id. */
  other_leg: string | null;
  direction: 'inbound' | 'outbound';
  /** The user whose number this party is (Kazoo's owner_id), when one is. */
  owner_id?: string;
  caller_id: { name: string; number: string };
  callee_id: { name: string; number: string };
  /** The number the caller dialled (Kazoo's destination). */
  destination: string;
  state: 'ringing' | 'answered' | 'ending';
  answered: boolean;
  created_at: string;
  /** When the call started, in Gregorian seconds (Kazoo's timestamp). */
  timestamp: number;
  answered_at: string | null;
  transfer: TransferView | null;
  last_transfer: TransferView | null;
}

export interface TransferView {
  id: string;
  state: string;
  outcome: string | null;
  target: string;
  transferor: string;
  transferee: string;
  target_answered: boolean;
}

/** The user a number is, in an account (Kazoo's owner_id); none by default. */
export type OwnerOf = (account: string | undefined, number: string) => string | undefined;
export const NO_OWNERS: OwnerOf = () => undefined;

/** Whose calls a request may see: the account's, or only those with one of a user's numbers as a party. */
export interface Scope {
  account: string;
  numbers?: ReadonlySet<string>;
}

export type ActionResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: TransferRefusal | 'not_found' | 'no_transfer' | 'not_cancellable' | 'unavailable' };

/** The calls the API acts on: one Stasis application's, or those of every station an instance drives. */
export interface CallDirectory {
  readonly activeCalls: { values(): Iterable<Call> };
  callOf(channelId: string): Call | undefined;
  hangup(channelId: string, cause: number): Promise<void>;
}

export class CallControl {
  constructor(
    private readonly app: CallDirectory,
    private readonly metaflows: (account: string) => MetaflowConfig | null | undefined,
    /** The Asterisk of this call can be commanded now (ARI connected and calls reconciled). */
    private readonly available: (call: Call) => boolean = () => true,
    private readonly owners: OwnerOf = NO_OWNERS,
  ) {}

  list(scope: Scope): ChannelView[] {
    const out: ChannelView[] = [];
    for (const call of this.app.activeCalls.values()) {
      if (!inScope(call, scope)) continue;
      for (const leg of [call.a, call.b]) if (leg && !leg.gone) out.push(view(call, leg, this.owners));
    }
    return out;
  }

  get(scope: Scope, channelId: string): ChannelView | undefined {
    const found = this.find(scope, channelId);
    return found ? view(found.call, found.leg, this.owners) : undefined;
  }

  /**
   * Transfers the other party of `channelId`'s call: the channel's party is
   * the transferor. Every account may: the request's fields go over the data
   * of the account's transfer code, if it has one, and over the defaults.
   */
  async transfer(scope: Scope, channelId: string, request: TransferData & { target: string }): Promise<ActionResult<TransferView>> {
    const found = this.find(scope, channelId, true);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available(found.call)) return { ok: false, error: 'unavailable' };
    const data: TransferData = { ...this.transferData(scope.account), ...request };
    const { call, leg } = found;
    return call.run(async () => {
      if (!leg.role || leg.gone) return { ok: false, error: 'not_found' } as const;
      const started = await requestTransfer(call, leg.role, request.target, data);
      return started.ok ? { ok: true, value: transferView(started.transfer) } : { ok: false, error: started.reason };
    });
  }

  async cancel(scope: Scope, channelId: string): Promise<ActionResult<TransferView>> {
    const found = this.find(scope, channelId);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available(found.call)) return { ok: false, error: 'unavailable' };
    const { call } = found;
    return call.run(async () => {
      if (!call.transfer) return { ok: false, error: 'no_transfer' } as const;
      if (!(await call.cancelTransfer())) return { ok: false, error: 'not_cancellable' } as const;
      return { ok: true, value: transferView(call.transfer?.snapshot() ?? call.lastTransfer!) };
    });
  }

  async hangup(scope: Scope, channelId: string): Promise<ActionResult<null>> {
    const found = this.find(scope, channelId, true);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available(found.call)) return { ok: false, error: 'unavailable' };
    await this.app.hangup(found.leg.id, Cause.NORMAL_CLEARING);
    return { ok: true, value: null };
  }

  /** Kazoo's break: stops what konami is playing to the channel (a tone, ringback). */
  async break(scope: Scope, channelId: string): Promise<ActionResult<null>> {
    const found = this.find(scope, channelId, true);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available(found.call)) return { ok: false, error: 'unavailable' };
    const { call, leg } = found;
    await call.run(() => call.silence(leg));
    return { ok: true, value: null };
  }

  /**
   * A channel of a call in scope that is one of its two parties; anything
   * else is "not found". `own`: for a user, only the user's own party (a user
   * transfers, hangs up or breaks their own side, never the other person's).
   */
  private find(scope: Scope, channelId: string, own = false): { call: Call; leg: Leg } | undefined {
    const call = this.app.callOf(channelId);
    if (!call || !inScope(call, scope)) return undefined;
    const leg = call.a?.id === channelId ? call.a : call.b?.id === channelId ? call.b : undefined;
    if (!leg || leg.gone) return undefined;
    return own && scope.numbers && !scope.numbers.has(leg.number) ? undefined : { call, leg };
  }

  /**
   * The account's transfer settings for API transfers: those of its first
   * transfer pattern (the code the web app edits), else of its first transfer
   * number. Only how a transfer runs is taken: the code's fixed target and its
   * type are the code's own, the request says its own.
   */
  private transferData(account: string): TransferData | undefined {
    const m = this.metaflows(account);
    if (!m) return undefined;
    for (const table of [m.patterns, m.numbers]) {
      for (const action of Object.values(table)) {
        if (action.module !== 'transfer') continue;
        const settings: TransferData = { ...(action.data as TransferData) };
        delete settings.target;
        delete settings.transfer_type;
        return settings;
      }
    }
    return undefined;
  }
}

/**
 * The call is the account's and, for a user, has one of the user's numbers as
 * a party (the transferor of a transfer in progress still counts: the user
 * may cancel after hanging up).
 */
export function inScope(call: Call, scope: Scope): boolean {
  return call.phase !== 'ended' && belongsTo(call, scope);
}

/** The call is (or was, if it ended) the account's and, for a user, one of the user's. */
export function belongsTo(call: Call, scope: Scope): boolean {
  if (call.account !== scope.account) return false;
  if (!scope.numbers) return true;
  const parties = [call.a, call.b, call.transfer?.transferor];
  return parties.some((leg) => leg !== undefined && scope.numbers!.has(leg.number));
}

/** A party of a call as the API shows it. */
export function view(call: Call, leg: Leg, owners: OwnerOf = NO_OWNERS): ChannelView {
  const other = leg === call.a ? call.b : call.a;
  const a = call.a;
  const b = call.b;
  const owner = owners(call.account, leg.number);
  return {
    id: leg.id,
    uuid: leg.id,
    call_id: call.id,
    other_leg: other && !other.gone ? other.id : null,
    direction: leg.role === 'a' ? 'inbound' : 'outbound',
    ...(owner ? { owner_id: owner } : {}),
    caller_id: { ...(a?.caller ?? { name: '', number: '' }) },
    callee_id: { name: b?.caller.name ?? '', number: b?.number ?? '' },
    destination: call.calledNumber,
    state: call.phase === 'dialling' ? 'ringing' : call.phase === 'bridged' ? 'answered' : 'ending',
    answered: call.answeredAt !== undefined,
    created_at: call.startedAt.toISOString(),
    timestamp: Math.floor(call.startedAt.getTime() / 1000) + GREGORIAN_OFFSET_S,
    answered_at: call.answeredAt?.toISOString() ?? null,
    transfer: call.transfer ? transferView(call.transfer.snapshot()) : null,
    last_transfer: call.lastTransfer ? transferView(call.lastTransfer) : null,
  };
}

function transferView(s: TransferSnapshot): TransferView {
  return {
    id: s.id,
    state: s.state,
    outcome: s.outcome ?? null,
    target: s.target,
    transferor: s.transferor.channel,
    transferee: s.transferee.channel,
    target_answered: s.target_answered,
  };
}
