// Compiled metaflows: which code a buffer of digits is, and whether a longer
// buffer could still be one (so a code fires on its last digit when it can).
// A code being typed is a CodeCursor: each digit advances every pattern by one
// step from where it stood, so a digit costs the same whether it is the first
// or the thirty-second; captures are worked out only for the code that fires.
import { DtmfRegex, type PatternState } from './dtmf-regex.js';
import type { CodeMatch } from './modules.js';
import type { CodeAction, MetaflowConfig } from './types.js';

export interface Evaluation {
  /** The code the buffer is, numbers first, then patterns in declared order. */
  match: CodeMatch | undefined;
  /** Some longer buffer could still match a number or a pattern. */
  canExtend: boolean;
}

interface Pattern {
  key: string;
  re: DtmfRegex;
  action: CodeAction;
}

export class Matcher {
  private readonly numbers: Map<string, CodeAction>;
  /** Every proper prefix of a number: a buffer here can still become one. */
  private readonly numberPrefixes = new Set<string>();
  readonly patterns: readonly Pattern[];

  constructor(readonly config: MetaflowConfig) {
    this.numbers = new Map(Object.entries(config.numbers));
    for (const key of this.numbers.keys()) for (let i = 0; i < key.length; i++) this.numberPrefixes.add(key.slice(0, i));
    this.patterns = Object.entries(config.patterns).map(([key, action]) => ({ key, re: new DtmfRegex(key), action }));
  }

  get bindingDigit(): string {
    return this.config.binding_digit;
  }

  get digitTimeoutMs(): number {
    return this.config.digit_timeout;
  }

  /** No code at all: every digit passes straight through. */
  get empty(): boolean {
    return this.numbers.size === 0 && this.patterns.length === 0;
  }

  listensTo(leg: 'a' | 'b'): boolean {
    return this.config.listen_on === 'both' || this.config.listen_on === leg;
  }

  /** A code about to be typed (nothing after the binding digit yet). */
  begin(): CodeCursor {
    return new CodeCursor(this, '', this.patterns.map((p) => p.re.initial()));
  }

  /** The buffer as a whole (tests and tools; the call path uses cursors). */
  evaluate(buffer: string): Evaluation {
    let cursor = this.begin();
    for (const digit of buffer) cursor = cursor.push(digit);
    return { match: cursor.match(), canExtend: cursor.canExtend };
  }

  /** @internal */
  numberAt(buffer: string): CodeAction | undefined {
    return this.numbers.get(buffer);
  }

  /** @internal */
  numberCanExtend(buffer: string): boolean {
    return this.numberPrefixes.has(buffer);
  }
}

/** Where a code being typed stands. Never changed: push() gives the next one. */
export class CodeCursor {
  /** The first pattern (in declared order) the buffer matches whole, or -1. */
  private readonly patternMatch: number;
  /** Some longer buffer could still match a number or a pattern. */
  readonly canExtend: boolean;

  constructor(
    readonly matcher: Matcher,
    /** The digits after the binding digit. */
    readonly buffer: string,
    private readonly states: readonly PatternState[],
  ) {
    const patterns = matcher.patterns;
    let first = -1;
    let extend = matcher.numberCanExtend(buffer);
    for (let i = 0; i < states.length; i++) {
      const re = patterns[i]!.re;
      if (first < 0 && re.accepts(states[i]!)) first = i;
      if (!extend && re.canExtend(states[i]!)) extend = true;
    }
    this.patternMatch = first;
    this.canExtend = extend;
  }

  /** The cursor with one more digit typed. */
  push(digit: string): CodeCursor {
    const patterns = this.matcher.patterns;
    return new CodeCursor(this.matcher, this.buffer + digit, this.states.map((s, i) => patterns[i]!.re.step(s, digit)));
  }

  /** The buffer is a code (cheap: no captures are worked out). */
  get matches(): boolean {
    return this.matcher.numberAt(this.buffer) !== undefined || this.patternMatch >= 0;
  }

  /** The code the buffer is, with its captures. */
  match(): CodeMatch | undefined {
    const number = this.matcher.numberAt(this.buffer);
    if (number) return matchOf(number, this.buffer, [], 'numbers', this.buffer);
    if (this.patternMatch < 0) return undefined;
    const p = this.matcher.patterns[this.patternMatch]!;
    const captures = p.re.groupCount === 0 ? [] : p.re.captures(this.buffer) ?? [];
    return matchOf(p.action, this.buffer, captures.map((c) => c ?? ''), 'patterns', p.key);
  }
}

function matchOf(
  action: CodeAction, collected: string, captures: string[], table: 'numbers' | 'patterns', key: string,
): CodeMatch {
  return { module: action.module, data: action.data, collected, captures, source: { table, key } };
}
