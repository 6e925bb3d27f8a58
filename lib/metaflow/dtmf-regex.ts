// Regular expressions over the DTMF alphabet (0-9 * # A-D), compiled to a
// Thompson NFA and run as a Pike VM: time linear in the input for every
// pattern (no backtracking, so no pattern can stall a call), captures, and the
// one answer backtracking engines cannot give: whether a longer input could
// still match, which lets a feature code fire on its last digit.
//
// Syntax: literals (\* for a literal star, # and A-D as themselves), \d, .,
// [...] and [^...] with ranges, (...), (?:...), (?<name>...), |, and the
// quantifiers * + ? {n} {n,} {n,m} (a trailing ? for lazy is accepted). A
// pattern always matches the whole code: ^ at the start and $ at the end are
// allowed and change nothing. Backreferences and lookaround are refused.

export const DTMF_SYMBOLS = '0123456789*#ABCD';
const ALL = (1 << DTMF_SYMBOLS.length) - 1;
const DIGITS = (1 << 10) - 1;
/** Repetition counts above this are refused: a code never exceeds it. */
export const MAX_REPEAT = 32;
const MAX_PROGRAM = 4000;
const MAX_SOURCE = 256;

export class RegexSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`);
    this.name = 'RegexSyntaxError';
  }
}

export function symbolIndex(ch: string): number {
  return DTMF_SYMBOLS.indexOf(ch.toUpperCase());
}

// ---- syntax tree ----
type Node =
  | { t: 'set'; mask: number }
  | { t: 'empty' }
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'group'; index: number | null; body: Node }
  | { t: 'repeat'; body: Node; min: number; max: number; greedy: boolean };

class Parser {
  private pos = 0;
  groups = 0;
  names: Array<string | undefined> = [];

  constructor(private readonly src: string) {}

  parse(): Node {
    if (this.src.length > MAX_SOURCE) throw new RegexSyntaxError(`pattern longer than ${MAX_SOURCE} characters`, MAX_SOURCE);
    if (this.peek() === '^') this.pos++;
    const node = this.alternation();
    if (this.peek() === '$' && this.pos === this.src.length - 1) this.pos++;
    if (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      throw new RegexSyntaxError(c === ')' ? 'unbalanced )' : `unexpected ${JSON.stringify(c)}`, this.pos);
    }
    return node;
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private alternation(): Node {
    const items = [this.concatenation()];
    while (this.peek() === '|') {
      this.pos++;
      items.push(this.concatenation());
    }
    return items.length === 1 ? items[0]! : { t: 'alt', items };
  }

  private concatenation(): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') break;
      if (c === '$' && this.pos === this.src.length - 1) break;
      items.push(this.quantified());
    }
    if (items.length === 0) return { t: 'empty' };
    return items.length === 1 ? items[0]! : { t: 'cat', items };
  }

  private quantified(): Node {
    const start = this.pos;
    const atom = this.atom();
    let node = atom;
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, Infinity];
      else if (c === '+') [min, max] = [1, Infinity];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
        if (!m) throw new RegexSyntaxError('malformed {n,m} repetition', this.pos);
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
          throw new RegexSyntaxError(`repetition over ${MAX_REPEAT}`, this.pos);
        }
        if (max < min) throw new RegexSyntaxError('repetition {n,m} with m < n', this.pos);
        this.pos += m[0].length - 1;
      } else break;
      this.pos++;
      let greedy = true;
      if (this.peek() === '?') {
        greedy = false;
        this.pos++;
      }
      if (node.t === 'repeat') throw new RegexSyntaxError('nested quantifier', this.pos - 1);
      node = { t: 'repeat', body: node, min, max, greedy };
    }
    if (node !== atom && atom.t === 'empty') throw new RegexSyntaxError('nothing to repeat', start);
    return node;
  }

  private atom(): Node {
    const c = this.src[this.pos]!;
    if (c === '(') return this.group();
    if (c === '[') return this.charClass();
    if (c === '.') {
      this.pos++;
      return { t: 'set', mask: ALL };
    }
    if (c === '\\') return { t: 'set', mask: this.escape(false) };
    if (c === '*' || c === '+' || c === '?' || c === '{') throw new RegexSyntaxError(`nothing to repeat before ${c} (a literal star is \\*)`, this.pos);
    if (c === '^' || c === '$') throw new RegexSyntaxError(`anchor ${c} only at the start or end`, this.pos);
    const i = symbolIndex(c);
    if (i < 0) throw new RegexSyntaxError(`${JSON.stringify(c)} is not a DTMF symbol (0-9 * # A-D)`, this.pos);
    this.pos++;
    return { t: 'set', mask: 1 << i };
  }

  private group(): Node {
    const open = this.pos;
    this.pos++;
    let index: number | null = null;
    if (this.src.startsWith('?:', this.pos)) {
      this.pos += 2;
    } else if (this.src.startsWith('?<', this.pos) && /^\?<[A-Za-z_]\w*>/.test(this.src.slice(this.pos))) {
      const name = /^\?<([A-Za-z_]\w*)>/.exec(this.src.slice(this.pos))!;
      this.pos += name[0].length;
      index = ++this.groups;
      this.names[index] = name[1];
    } else if (this.peek() === '?') {
      throw new RegexSyntaxError('lookaround and other (?...) groups are not supported', this.pos);
    } else {
      index = ++this.groups;
    }
    const body = this.alternation();
    if (this.peek() !== ')') throw new RegexSyntaxError('unclosed (', open);
    this.pos++;
    return { t: 'group', index, body };
  }

  private charClass(): Node {
    const open = this.pos;
    this.pos++;
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.pos++;
    }
    let mask = 0;
    let first = true;
    while (this.peek() !== ']' || first) {
      const c = this.peek();
      if (c === undefined) throw new RegexSyntaxError('unclosed [', open);
      first = false;
      let lo: number;
      if (c === '\\') {
        const m = this.escape(true);
        if ((m & (m - 1)) !== 0) {
          mask |= m;
          continue;
        }
        lo = Math.log2(m);
      } else {
        lo = symbolIndex(c);
        if (lo < 0) throw new RegexSyntaxError(`${JSON.stringify(c)} is not a DTMF symbol (0-9 * # A-D)`, this.pos);
        this.pos++;
      }
      if (this.peek() === '-' && this.src[this.pos + 1] !== ']' && this.src[this.pos + 1] !== undefined) {
        this.pos++;
        const hiCh = this.src[this.pos]!;
        const hi = symbolIndex(hiCh);
        if (hi < 0 || hi < lo || (lo <= 9) !== (hi <= 9)) throw new RegexSyntaxError('bad range in [...]', this.pos);
        this.pos++;
        for (let i = lo; i <= hi; i++) mask |= 1 << i;
      } else {
        mask |= 1 << lo;
      }
    }
    this.pos++;
    return { t: 'set', mask: negate ? ALL & ~mask : mask };
  }

  /** An escape sequence; returns its symbol mask. */
  private escape(inClass: boolean): number {
    const at = this.pos;
    const c = this.src[this.pos + 1];
    this.pos += 2;
    if (c === 'd') return DIGITS;
    if (c === 'D') return ALL & ~DIGITS;
    if (c !== undefined && /[*#+?.()[\]{}|^$\\-]/.test(c)) {
      const i = symbolIndex(c);
      if (i < 0) throw new RegexSyntaxError(`\\${c} is not a DTMF symbol`, at);
      return 1 << i;
    }
    if (c !== undefined && /[1-9]/.test(c)) throw new RegexSyntaxError('backreferences are not supported', at);
    throw new RegexSyntaxError(`unsupported escape \\${c ?? ''}${inClass ? ' in [...]' : ''}`, at);
  }
}

// ---- program ----
type Inst =
  | { op: 'char'; mask: number }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'save'; n: number }
  | { op: 'match' };

class Compiler {
  readonly prog: Inst[] = [];

  private emit(i: Inst): number {
    if (this.prog.length >= MAX_PROGRAM) throw new RegexSyntaxError('pattern too large', 0);
    this.prog.push(i);
    return this.prog.length - 1;
  }

  compile(n: Node): void {
    switch (n.t) {
      case 'empty':
        return;
      case 'set':
        this.emit({ op: 'char', mask: n.mask });
        return;
      case 'cat':
        for (const item of n.items) this.compile(item);
        return;
      case 'group':
        if (n.index !== null) this.emit({ op: 'save', n: 2 * n.index });
        this.compile(n.body);
        if (n.index !== null) this.emit({ op: 'save', n: 2 * n.index + 1 });
        return;
      case 'alt': {
        const jumps: number[] = [];
        for (let i = 0; i < n.items.length - 1; i++) {
          const split = this.emit({ op: 'split', x: 0, y: 0 });
          (this.prog[split] as { x: number }).x = this.prog.length;
          this.compile(n.items[i]!);
          jumps.push(this.emit({ op: 'jmp', x: 0 }));
          (this.prog[split] as { y: number }).y = this.prog.length;
        }
        this.compile(n.items[n.items.length - 1]!);
        for (const j of jumps) (this.prog[j] as { x: number }).x = this.prog.length;
        return;
      }
      case 'repeat': {
        for (let i = 0; i < n.min; i++) this.compile(n.body);
        if (n.max === Infinity) {
          const split = this.emit({ op: 'split', x: 0, y: 0 });
          this.compile(n.body);
          this.emit({ op: 'jmp', x: split });
          this.setSplit(split, split + 1, this.prog.length, n.greedy);
        } else {
          const splits: number[] = [];
          for (let i = n.min; i < n.max; i++) {
            splits.push(this.emit({ op: 'split', x: 0, y: 0 }));
            this.compile(n.body);
          }
          for (const s of splits) this.setSplit(s, s + 1, this.prog.length, n.greedy);
        }
        return;
      }
    }
  }

  private setSplit(at: number, body: number, after: number, greedy: boolean): void {
    this.prog[at] = greedy ? { op: 'split', x: body, y: after } : { op: 'split', x: after, y: body };
  }
}

export interface RunResult {
  /** The whole input matches. */
  matched: boolean;
  /** Capture groups of the match (undefined for a group that took no part). */
  captures: Array<string | undefined>;
  /** Some longer input starting with this one could match. */
  canExtend: boolean;
}

interface Thread {
  pc: number;
  caps: number[];
}

export class DtmfRegex {
  private readonly prog: Inst[];
  readonly groupCount: number;
  readonly groupNames: ReadonlyArray<string | undefined>;

  constructor(readonly source: string) {
    const parser = new Parser(source);
    const tree = parser.parse();
    const c = new Compiler();
    c.compile({ t: 'group', index: 0, body: tree });
    c.prog.push({ op: 'match' });
    this.prog = c.prog;
    this.groupCount = parser.groups;
    this.groupNames = parser.names;
  }

  /** Runs over the input; symbols outside the DTMF alphabet never match. */
  run(input: string): RunResult {
    const slots = 2 * (this.groupCount + 1);
    let clist: Thread[] = [];
    const seen = new Int32Array(this.prog.length).fill(-1);
    let step = 0;
    const add = (list: Thread[], pc: number, caps: number[], pos: number) => {
      // Iterative closure over jmp/split/save, in priority order.
      const stack: Array<[number, number[]]> = [[pc, caps]];
      while (stack.length > 0) {
        const [p, c] = stack.pop()!;
        if (seen[p] === step) continue;
        seen[p] = step;
        const inst = this.prog[p]!;
        if (inst.op === 'jmp') stack.push([inst.x, c]);
        else if (inst.op === 'split') {
          stack.push([inst.y, c]);
          stack.push([inst.x, c]);
        } else if (inst.op === 'save') {
          const copy = c.slice();
          copy[inst.n] = pos;
          stack.push([p + 1, copy]);
        } else list.push({ pc: p, caps: c });
      }
    };
    add(clist, 0, new Array<number>(slots).fill(-1), 0);
    for (let pos = 0; pos < input.length && clist.length > 0; pos++) {
      const sym = symbolIndex(input[pos]!);
      const nlist: Thread[] = [];
      step++;
      for (const th of clist) {
        const inst = this.prog[th.pc]!;
        if (inst.op === 'char' && sym >= 0 && (inst.mask & (1 << sym)) !== 0) add(nlist, th.pc + 1, th.caps, pos + 1);
      }
      clist = nlist;
    }
    const consumedAll = clist.length > 0 || input.length === 0;
    let match: Thread | undefined;
    let canExtend = false;
    if (consumedAll) {
      for (const th of clist) {
        const inst = this.prog[th.pc]!;
        if (inst.op === 'match') match ??= th;
        else if (inst.op === 'char') canExtend = true;
      }
    }
    const captures: Array<string | undefined> = [];
    if (match) {
      for (let g = 1; g <= this.groupCount; g++) {
        const s = match.caps[2 * g]!;
        const e = match.caps[2 * g + 1]!;
        captures.push(s >= 0 && e >= 0 ? input.slice(s, e) : undefined);
      }
    }
    return { matched: match !== undefined, captures, canExtend };
  }
}
