// What the API may do with calls: the account's view of its calls and the
// actions on them. Every action runs in the call's own queue, like a code.
import type { MetaflowConfig } from '../metaflow/types.js';
import type { StasisApp } from './app.js';
import type { Call, Leg, TransferRefusal } from './call.js';
import { Cause } from './causes.js';
import { transferOptions, type TransferData } from './modules/transfer.js';
import type { TransferSnapshot } from './transfer.js';

export interface ChannelView {
  /** This party's channel id (Kazoo's call id). */
  id: string;
  /** The call it belongs to (the caller's channel id). */
  call_id: string;
  /** The other party's channel id. */
  other_leg: string | null;
  direction: 'inbound' | 'outbound';
  caller_id: { name: string; number: string };
  callee_id: { name: string; number: string };
  state: 'ringing' | 'answered' | 'ending';
  answered: boolean;
  created_at: string;
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

export type ActionResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: TransferRefusal | 'not_found' | 'not_enabled' | 'no_transfer' | 'unavailable' };

export class CallControl {
  constructor(
    private readonly app: StasisApp,
    private readonly metaflows: (account: string) => MetaflowConfig | null | undefined,
    /** Asterisk can be commanded now (ARI connected and calls reconciled). */
    private readonly available: () => boolean = () => true,
  ) {}

  list(account: string): ChannelView[] {
    const out: ChannelView[] = [];
    for (const call of this.app.activeCalls.values()) {
      if (call.account !== account || call.phase === 'ended') continue;
      for (const leg of [call.a, call.b]) if (leg && !leg.gone) out.push(view(call, leg));
    }
    return out;
  }

  get(account: string, channelId: string): ChannelView | undefined {
    const found = this.find(account, channelId);
    return found ? view(found.call, found.leg) : undefined;
  }

  async transfer(account: string, channelId: string, target: string): Promise<ActionResult<TransferView>> {
    const found = this.find(account, channelId);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available()) return { ok: false, error: 'unavailable' };
    const data = this.transferData(account);
    if (!data) return { ok: false, error: 'not_enabled' };
    const { call, leg } = found;
    return call.run(async () => {
      if (!leg.role || leg.gone) return { ok: false, error: 'not_found' } as const;
      const started = await call.startTransfer(leg.role, target, transferOptions(data));
      return started.ok ? { ok: true, value: transferView(started.transfer) } : { ok: false, error: started.reason };
    });
  }

  async cancel(account: string, channelId: string): Promise<ActionResult<TransferView>> {
    const found = this.find(account, channelId);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available()) return { ok: false, error: 'unavailable' };
    const { call } = found;
    return call.run(async () => {
      if (!call.transfer) return { ok: false, error: 'no_transfer' } as const;
      await call.cancelTransfer();
      return { ok: true, value: transferView(call.lastTransfer ?? call.transfer!.snapshot()) };
    });
  }

  async hangup(account: string, channelId: string): Promise<ActionResult<null>> {
    const found = this.find(account, channelId);
    if (!found) return { ok: false, error: 'not_found' };
    if (!this.available()) return { ok: false, error: 'unavailable' };
    await this.app.hangup(found.leg.id, Cause.NORMAL_CLEARING);
    return { ok: true, value: null };
  }

  /** A channel of this account's calls that is one of its two parties; anything else is "not found". */
  private find(account: string, channelId: string): { call: Call; leg: Leg } | undefined {
    const call = this.app.callOf(channelId);
    if (!call || call.account !== account || call.phase === 'ended') return undefined;
    const leg = call.a?.id === channelId ? call.a : call.b?.id === channelId ? call.b : undefined;
    return leg && !leg.gone ? { call, leg } : undefined;
  }

  /** The account's transfer settings: the data of its (first) transfer code; none if it has no transfer code. */
  private transferData(account: string): TransferData | undefined {
    const m = this.metaflows(account);
    if (!m) return undefined;
    for (const table of [m.numbers, m.patterns]) {
      for (const action of Object.values(table)) if (action.module === 'transfer') return action.data as TransferData;
    }
    return undefined;
  }
}

function view(call: Call, leg: Leg): ChannelView {
  const other = leg === call.a ? call.b : call.a;
  const a = call.a;
  const b = call.b;
  return {
    id: leg.id,
    call_id: call.id,
    other_leg: other && !other.gone ? other.id : null,
    direction: leg.role === 'a' ? 'inbound' : 'outbound',
    caller_id: { ...(a?.caller ?? { name: '', number: '' }) },
    callee_id: { name: b?.caller.name ?? '', number: b?.number ?? '' },
    state: call.phase === 'dialling' ? 'ringing' : call.phase === 'bridged' ? 'answered' : 'ending',
    answered: call.answeredAt !== undefined,
    created_at: call.startedAt.toISOString(),
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
