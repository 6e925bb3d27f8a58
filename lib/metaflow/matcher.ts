// Compiled metaflows: which code a buffer of digits is, and whether a longer
// buffer could still be one (so a code fires on its last digit when it can).
import { DtmfRegex } from './dtmf-regex.js';
import type { CodeMatch } from './modules.js';
import type { CodeAction, MetaflowConfig } from './types.js';

export interface Evaluation {
  /** The code the buffer is, numbers first, then patterns in declared order. */
  match: CodeMatch | undefined;
  /** Some longer buffer could still match a number or a pattern. */
  canExtend: boolean;
}

export class Matcher {
  private readonly numbers: Map<string, CodeAction>;
  private readonly patterns: Array<{ key: string; re: DtmfRegex; action: CodeAction }>;

  constructor(readonly config: MetaflowConfig) {
    this.numbers = new Map(Object.entries(config.numbers));
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

  evaluate(buffer: string): Evaluation {
    let match: CodeMatch | undefined;
    let canExtend = false;
    const number = this.numbers.get(buffer);
    if (number) match = matchOf(number, buffer, [], 'numbers', buffer);
    for (const key of this.numbers.keys()) {
      if (key.length > buffer.length && key.startsWith(buffer)) {
        canExtend = true;
        break;
      }
    }
    for (const p of this.patterns) {
      if (match && canExtend) break;
      const r = p.re.run(buffer);
      if (r.matched && !match) match = matchOf(p.action, buffer, r.captures.map((c) => c ?? ''), 'patterns', p.key);
      if (r.canExtend) canExtend = true;
    }
    return { match, canExtend };
  }
}

function matchOf(
  action: CodeAction, collected: string, captures: string[], table: 'numbers' | 'patterns', key: string,
): CodeMatch {
  return { module: action.module, data: action.data, collected, captures, source: { table, key } };
}
