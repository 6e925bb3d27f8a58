// What a call needs to run feature codes, and the one port through which a
// feature module acts on the call it was pressed in. Modules see this port,
// never the Call class: the few things a feature may ask of a call.
import type { Matcher } from '../metaflow/matcher.js';
import type { FeatureModule } from '../metaflow/modules.js';
import type { LegRole } from '../metaflow/types.js';
import type { TransferOptions, TransferSnapshot } from './transfer.js';

export type TransferRefusal =
  | 'not_bridged' | 'in_progress' | 'empty_target' | 'invalid_target' | 'own_number' | 'transferee_number'
  /** The dial route does not exist (any more) or the account may not use it. */
  | 'route_not_allowed'
  /** The call started as many transfers as one call may. */
  | 'call_transfer_limit'
  /** The account started transfers faster than it may. */
  | 'account_transfer_rate';

export type TransferStart = { ok: true; transfer: TransferSnapshot } | { ok: false; reason: TransferRefusal };

/** A transfer asked for: by a code, the API, or anything else that turns into one. */
export interface TransferRequest {
  /** The party who transfers (the other party is transferred). */
  by: LegRole;
  target: string;
  options: TransferOptions;
}

/** What a feature module may do to a call. */
export interface CallPort {
  readonly id: string;
  readonly account: string | undefined;
  /** Starts a transfer, or says why not (the call is untouched then). */
  startTransfer(request: TransferRequest): Promise<TransferStart>;
  /** Cancels the transfer in progress; only its transferor may (`by` undefined: the API). False: nothing was cancelled. */
  cancelTransfer(by?: LegRole): Promise<boolean>;
  /** A short tone telling a party that what they asked for was refused. */
  refuse(role: LegRole): Promise<void>;
}

export type CallModule = FeatureModule<CallPort>;

export interface CallFeatures {
  matcher(account: string | undefined): Matcher | undefined;
  module(name: string): CallModule | undefined;
}

export const NO_FEATURES: CallFeatures = {
  matcher: () => undefined,
  module: () => undefined,
};
