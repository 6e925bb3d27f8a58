// Regular expressions over the DTMF alphabet (0-9 * # A-D), compiled to a
// Thompson NFA. A code being typed advances a set of NFA states one digit at a
// time (step): each digit costs at most one visit per instruction of the
// program, whatever was typed before, and no capture is tracked. Captures are
// worked out once, when a code fires, by a Pike VM whose threads share their
// capture history (a save costs one small node, not a copy of every slot).
// No backtracking, so no pattern can stall a call; and the one answer
// backtracking engines cannot give: whether a longer input could still match,
// which lets a feature code fire on its last digit.
//
// Linear is not cheap enough on its own: a program's size is its cost per
// digit, so it is bounded here (MAX_PROGRAM) and the metaflow validator adds
// up the sizes of an account's patterns against a budget.
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
/** Instructions one pattern may compile to: its cost, in NFA visits, per digit. */
export const MAX_PROGRAM = 512;
/** Capture groups one pattern may have. */
export const MAX_GROUPS = 9;
const MAX_SOURCE = 256;

export class RegexSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`);
    this.name = 'RegexSyntaxError';
  }
}

/** A well-formed pattern that costs more than one pattern may. */
export class RegexCostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegexCostError';
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
      index = this.newGroup(open);
      this.names[index] = name[1];
    } else if (this.peek() === '?') {
      throw new RegexSyntaxError('lookaround and other (?...) groups are not supported', this.pos);
    } else {
      index = this.newGroup(open);
    }
    const body = this.alternation();
    if (this.peek() !== ')') throw new RegexSyntaxError('unclosed (', open);
    this.pos++;
    return { t: 'group', index, body };
  }

  private newGroup(at: number): number {
    if (this.groups >= MAX_GROUPS) throw new RegexSyntaxError(`more than ${MAX_GROUPS} capture groups (use (?:...) to group without capturing)`, at);
    return ++this.groups;
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
    const set = negate ? ALL & ~mask : mask;
    if (set === 0) throw new RegexSyntaxError('[...] matches no key', open);
    return { t: 'set', mask: set };
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
    if (this.prog.length >= MAX_PROGRAM) {
      throw new RegexCostError(`compiles to more than ${MAX_PROGRAM} steps per digit: use fewer or smaller repetitions and alternatives`);
    }
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

/** The fewest symbols the node can match. */
function minLength(n: Node): number {
  switch (n.t) {
    case 'set':
      return 1;
    case 'empty':
      return 0;
    case 'cat':
      return n.items.reduce((sum, item) => sum + minLength(item), 0);
    case 'alt':
      return Math.min(...n.items.map(minLength));
    case 'group':
      return minLength(n.body);
    case 'repeat':
      return n.min * minLength(n.body);
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

/**
 * Where a pattern stands after some input: the set of NFA instructions its
 * threads wait at, one bit each. Never changed once made; null is "no thread
 * left" (no longer input can match either).
 */
export type PatternState = Readonly<Uint32Array> | null;

const CHAR = 0;
const SPLIT = 1;
const JMP = 2;
const SAVE = 3;
const MATCH = 4;

export class DtmfRegex {
  readonly groupCount: number;
  readonly groupNames: ReadonlyArray<string | undefined>;
  /** Instructions in the program: the most NFA visits one digit can cost. */
  readonly size: number;
  /** The fewest digits a match needs. */
  readonly minLength: number;
  private readonly op: Uint8Array;
  /** char: the symbol mask; split and jmp: the first target; save: the slot. */
  private readonly x: Int32Array;
  /** split: the second target. */
  private readonly y: Int32Array;
  private readonly words: number;
  /** Instructions that wait for a symbol, as a bit set. */
  private readonly charBits: Uint32Array;
  private readonly matchPc: number;
  private readonly start: Uint32Array;
  // Scratch for step(), which never yields: one per pattern is enough.
  private readonly mark: Uint32Array;
  private readonly stack: Int32Array;
  private generation = 0;

  constructor(readonly source: string) {
    const parser = new Parser(source);
    const tree = parser.parse();
    const c = new Compiler();
    c.compile({ t: 'group', index: 0, body: tree });
    c.prog.push({ op: 'match' });
    const n = c.prog.length;
    this.size = n;
    this.minLength = minLength(tree);
    this.groupCount = parser.groups;
    this.groupNames = parser.names;
    this.op = new Uint8Array(n);
    this.x = new Int32Array(n);
    this.y = new Int32Array(n);
    this.words = (n + 31) >>> 5;
    this.charBits = new Uint32Array(this.words);
    c.prog.forEach((inst, pc) => {
      switch (inst.op) {
        case 'char':
          this.op[pc] = CHAR;
          this.x[pc] = inst.mask;
          this.charBits[pc >>> 5]! |= 1 << (pc & 31);
          break;
        case 'split':
          this.op[pc] = SPLIT;
          this.x[pc] = inst.x;
          this.y[pc] = inst.y;
          break;
        case 'jmp':
          this.op[pc] = JMP;
          this.x[pc] = inst.x;
          break;
        case 'save':
          this.op[pc] = SAVE;
          this.x[pc] = inst.n;
          break;
        case 'match':
          this.op[pc] = MATCH;
      }
    });
    this.matchPc = n - 1;
    this.mark = new Uint32Array(n);
    this.stack = new Int32Array(n);
    this.start = new Uint32Array(this.words);
    this.nextGeneration();
    this.closure(0, this.start);
  }

  /** The state before any input. */
  initial(): PatternState {
    return this.start;
  }

  /** The state after one more symbol; at most one visit per instruction. */
  step(state: PatternState, symbol: string): PatternState {
    if (state === null) return null;
    const sym = symbolIndex(symbol);
    if (sym < 0) return null;
    const bit = 1 << sym;
    const next = new Uint32Array(this.words);
    this.nextGeneration();
    let alive = false;
    for (let w = 0; w < this.words; w++) {
      let bits = state[w]! & this.charBits[w]!;
      while (bits !== 0) {
        const low = bits & -bits;
        bits ^= low;
        const pc = (w << 5) + 31 - Math.clz32(low);
        if ((this.x[pc]! & bit) !== 0) {
          this.closure(pc + 1, next);
          alive = true;
        }
      }
    }
    return alive ? next : null;
  }

  /** The input so far matches the whole pattern. */
  accepts(state: PatternState): boolean {
    return state !== null && (state[this.matchPc >>> 5]! & (1 << (this.matchPc & 31))) !== 0;
  }

  /** Some longer input could still match. */
  canExtend(state: PatternState): boolean {
    if (state === null) return false;
    for (let w = 0; w < this.words; w++) if ((state[w]! & this.charBits[w]!) !== 0) return true;
    return false;
  }

  /** The state after the whole input. */
  advance(input: string, from: PatternState = this.start): PatternState {
    let state = from;
    for (let i = 0; i < input.length && state !== null; i++) state = this.step(state, input[i]!);
    return state;
  }

  /** Runs over the input; symbols outside the DTMF alphabet never match. */
  run(input: string): RunResult {
    const state = this.advance(input);
    const matched = this.accepts(state);
    return { matched, captures: matched ? this.captures(input)! : [], canExtend: this.canExtend(state) };
  }

  /**
   * The capture groups of the whole-input match, as a backtracking engine
   * would choose them (greedy or lazy as written, leftmost alternative
   * first); undefined when the input does not match.
   */
  captures(input: string): Array<string | undefined> | undefined {
    if (this.groupCount === 0) return this.accepts(this.advance(input)) ? [] : undefined;
    const n = this.size;
    // Threads as parallel typed arrays (instruction, newest save node); save
    // nodes in an arena (slot, position, previous node; -1 ends a history).
    let pcs = new Int32Array(n);
    let caps = new Int32Array(n);
    let count = 0;
    let nextPcs = new Int32Array(n);
    let nextCaps = new Int32Array(n);
    let nextCount = 0;
    const stackPc = new Int32Array(2 * n + 2);
    const stackCap = new Int32Array(2 * n + 2);
    let arena = new Int32Array(3 * 64);
    let nodes = 0;
    const save = (slot: number, pos: number, prev: number): number => {
      if (3 * (nodes + 1) > arena.length) {
        const bigger = new Int32Array(arena.length * 2);
        bigger.set(arena);
        arena = bigger;
      }
      arena[3 * nodes] = slot;
      arena[3 * nodes + 1] = pos;
      arena[3 * nodes + 2] = prev;
      return nodes++;
    };
    // Depth first in priority order (first alternative first); each instruction once per position.
    const { op, x, y, mark } = this;
    const add = (from: number, cap: number, pos: number) => {
      const generation = this.generation;
      let sp = 0;
      stackPc[sp] = from;
      stackCap[sp++] = cap;
      while (sp > 0) {
        const pc = stackPc[--sp]!;
        const c = stackCap[sp]!;
        if (mark[pc] === generation) continue;
        mark[pc] = generation;
        const o = op[pc];
        if (o === JMP) {
          stackPc[sp] = x[pc]!;
          stackCap[sp++] = c;
        } else if (o === SPLIT) {
          stackPc[sp] = y[pc]!;
          stackCap[sp++] = c;
          stackPc[sp] = x[pc]!;
          stackCap[sp++] = c;
        } else if (o === SAVE) {
          stackPc[sp] = pc + 1;
          stackCap[sp++] = save(x[pc]!, pos, c);
        } else {
          nextPcs[nextCount] = pc;
          nextCaps[nextCount++] = c;
        }
      }
    };
    this.nextGeneration();
    add(0, -1, 0);
    for (let pos = 0; pos <= input.length; pos++) {
      [pcs, nextPcs] = [nextPcs, pcs];
      [caps, nextCaps] = [nextCaps, caps];
      count = nextCount;
      nextCount = 0;
      if (pos === input.length || count === 0) break;
      const sym = symbolIndex(input[pos]!);
      if (sym < 0) return undefined;
      this.nextGeneration();
      for (let i = 0; i < count; i++) {
        const pc = pcs[i]!;
        if (op[pc] === CHAR && (x[pc]! & (1 << sym)) !== 0) add(pc + 1, caps[i]!, pos + 1);
      }
    }
    let matched = -1;
    for (let i = 0; i < count && matched < 0; i++) if (this.op[pcs[i]!] === MATCH) matched = i;
    if (matched < 0) return undefined;
    const slots = new Array<number>(2 * (this.groupCount + 1)).fill(-1);
    for (let node = caps[matched]!; node >= 0; node = arena[3 * node + 2]!) {
      const slot = arena[3 * node]!;
      if (slots[slot] === -1) slots[slot] = arena[3 * node + 1]!;
    }
    const captures: Array<string | undefined> = [];
    for (let g = 1; g <= this.groupCount; g++) {
      const start = slots[2 * g]!;
      const end = slots[2 * g + 1]!;
      captures.push(start >= 0 && end >= 0 ? input.slice(start, end) : undefined);
    }
    return captures;
  }

  /** Adds every instruction reachable from `from` without a symbol that waits for one (or matches) to `into`. */
  private closure(from: number, into: Uint32Array): void {
    const { op, x, y, mark, stack, generation } = this;
    if (mark[from] === generation) return;
    mark[from] = generation;
    let sp = 0;
    stack[sp++] = from;
    while (sp > 0) {
      const pc = stack[--sp]!;
      const o = op[pc];
      if (o === CHAR || o === MATCH) {
        into[pc >>> 5]! |= 1 << (pc & 31);
        continue;
      }
      const a = o === SAVE ? pc + 1 : x[pc]!;
      if (mark[a] !== generation) {
        mark[a] = generation;
        stack[sp++] = a;
      }
      if (o === SPLIT && mark[y[pc]!] !== generation) {
        mark[y[pc]!] = generation;
        stack[sp++] = y[pc]!;
      }
    }
  }

  private nextGeneration(): void {
    if (++this.generation === 0xffffffff) {
      this.mark.fill(0);
      this.generation = 1;
    }
  }
}
