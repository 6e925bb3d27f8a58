// A channel konami looks after within one call.
import type { LegRole } from '../metaflow/types.js';
import type { CallerId } from './ari-types.js';

export type { LegRole } from '../metaflow/types.js';

/** What konami made the channel for: the caller, the called party, a transfer target, a transferor called back. */
export type LegKind = 'a' | 'b' | 'target' | 'recall';

export interface Leg {
  readonly id: string;
  readonly kind: LegKind;
  /** Its place in the call's pair of parties (a: caller side, b: called side); undefined while it is not one of them. */
  role: LegRole | undefined;
  caller: CallerId;
  /** Its number as konami knows it (caller id number, or the number konami dialled). */
  number: string;
  /** How to call it back: the dial string konami reached it with, or a caller's device; undefined when unknown. */
  endpoint: string | undefined;
  /** Konami has seen StasisStart for it (ARI commands are accepted). */
  inStasis: boolean;
  /** Konami asked Asterisk to dial it. */
  dialled: boolean;
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

export function newLeg(
  id: string,
  kind: LegKind,
  init: { caller: CallerId; number: string; endpoint?: string; inStasis: boolean },
): Leg {
  return {
    id,
    kind,
    role: kind === 'a' || kind === 'b' ? kind : undefined,
    caller: init.caller,
    number: init.number,
    endpoint: init.endpoint,
    inStasis: init.inStasis,
    dialled: false,
    rang: false,
    answered: false,
    gone: false,
    hangupRequested: false,
  };
}
