// Turns the digits each party presses into feature codes, per party:
//
// - The binding digit arms the party's buffer and is not part of it.
// - While armed, each digit restarts the digit timer; `#` ends the code.
// - A code fires as soon as it matches and no longer code could match;
//   otherwise on `#` or the timeout, if it matches then.
// - A digit that makes the buffer impossible ends it at once: a buffer that
//   already matched fires, anything else is replayed to the other party, and
//   the digit is then taken as if nothing were armed (so `*` re-arms).
// - Digits that cannot start or continue a code pass to the other party at
//   once; held digits are replayed, in order, when no code matches. A party
//   who never presses the binding digit is never delayed.
//
// The collector holds no timers of its own: the call supplies them, so a
// timeout runs through the call's serial queue like every other event.
import { MAX_CODE_DIGITS } from './config.js';
import type { CodeCursor, Matcher } from './matcher.js';
import type { CodeMatch, Invocation } from './modules.js';
import type { LegRole } from './types.js';

export interface CollectorOutput {
  /** The other party must hear these digits pressed by `from`, in this order. */
  pass(from: LegRole, digits: string): void;
  /** A code matched. */
  fire(invocation: Invocation): void;
  /** A code ended without matching; its digits were replayed (for logs and metrics). */
  unmatched?(from: LegRole, collected: string, why: 'timeout' | 'terminated' | 'impossible'): void;
}

export interface CollectorTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

interface Armed {
  /** Digits held back from the other party, binding digit included. */
  held: string;
  /** The digits after the binding digit, matched so far. */
  cursor: CodeCursor;
  timer: unknown;
}

const DTMF = /^[0-9*#A-D]$/;

export class DigitCollector {
  private readonly armed = new Map<LegRole, Armed>();

  constructor(
    /** The party's account metaflows as they are now (undefined: no codes). */
    private readonly matcher: () => Matcher | undefined,
    private readonly out: CollectorOutput,
    private readonly timers: CollectorTimers,
  ) {}

  /** A digit `leg` pressed (ChannelDtmfReceived). */
  press(leg: LegRole, key: string): void {
    const digit = key.toUpperCase();
    const m = this.matcher();
    const state = this.armed.get(leg);
    if (!state) {
      if (m && !m.empty && m.listensTo(leg) && digit === m.bindingDigit) this.arm(leg, m, digit);
      else this.out.pass(leg, key);
      return;
    }
    if (!m || m !== state.cursor.matcher || !DTMF.test(digit)) {
      // The metaflows were removed or changed while a code was forming, or a key outside DTMF.
      this.giveBack(leg, state, 'impossible');
      this.press(leg, key);
      return;
    }
    if (digit === '#') {
      this.disarm(leg, state);
      const match = matchOf(state.cursor);
      if (match) this.fire(leg, match);
      else this.replay(leg, state.held + key, state.cursor.buffer, 'terminated');
      return;
    }
    const next = state.cursor.push(digit);
    const more = next.canExtend && next.buffer.length < MAX_CODE_DIGITS;
    if (next.matches && !more) {
      this.disarm(leg, state);
      this.fire(leg, next.match()!);
    } else if (next.matches || more) {
      state.cursor = next;
      state.held += key;
      this.restartTimer(leg, state, m);
    } else {
      // No code can be this: close the buffer as it stood, then take the digit afresh.
      this.disarm(leg, state);
      const before = matchOf(state.cursor);
      if (before) this.fire(leg, before);
      else this.replay(leg, state.held, state.cursor.buffer, 'impossible');
      this.press(leg, key);
    }
  }

  /** Whether `leg` is in the middle of a code (its digits are being held). */
  isArmed(leg: LegRole): boolean {
    return this.armed.has(leg);
  }

  /** Drops what `leg` was typing, without replaying it (that party left or was replaced). */
  forget(leg: LegRole): void {
    const state = this.armed.get(leg);
    if (state) this.disarm(leg, state);
  }

  /** Ends collection for good (the call is over): timers cleared, held digits dropped. */
  dispose(): void {
    for (const [leg, state] of this.armed) this.disarm(leg, state);
  }

  private arm(leg: LegRole, m: Matcher, digit: string): void {
    const state: Armed = { held: digit, cursor: m.begin(), timer: undefined };
    this.armed.set(leg, state);
    this.restartTimer(leg, state, m);
  }

  private restartTimer(leg: LegRole, state: Armed, m: Matcher): void {
    if (state.timer !== undefined) this.timers.clear(state.timer);
    state.timer = this.timers.set(() => this.expire(leg, state), m.digitTimeoutMs);
  }

  private expire(leg: LegRole, state: Armed): void {
    if (this.armed.get(leg) !== state) return; // a stale timer: that code already ended
    this.disarm(leg, state);
    const match = this.matcher() === state.cursor.matcher ? matchOf(state.cursor) : undefined;
    if (match) this.fire(leg, match);
    else this.replay(leg, state.held, state.cursor.buffer, 'timeout');
  }

  private giveBack(leg: LegRole, state: Armed, why: 'impossible'): void {
    this.disarm(leg, state);
    this.replay(leg, state.held, state.cursor.buffer, why);
  }

  private disarm(leg: LegRole, state: Armed): void {
    if (state.timer !== undefined) this.timers.clear(state.timer);
    state.timer = undefined;
    this.armed.delete(leg);
  }

  private fire(leg: LegRole, match: CodeMatch): void {
    this.out.fire({ ...match, leg });
  }

  private replay(leg: LegRole, digits: string, collected: string, why: 'timeout' | 'terminated' | 'impossible'): void {
    this.out.unmatched?.(leg, collected, why);
    this.out.pass(leg, digits);
  }
}

/** The code a cursor stands on; an empty code is never a code, whatever a pattern would accept. */
function matchOf(cursor: CodeCursor): CodeMatch | undefined {
  return cursor.buffer === '' ? undefined : cursor.match();
}
