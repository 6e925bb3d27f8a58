// Benchmark: what one digit costs with the most expensive metaflows that
// validation accepts. Each family below fills an account's pattern budget
// with one hostile shape (the largest program per pattern, the most capture
// saves, the widest alternation, a hundred numbers and patterns that all stay
// alive); a party then presses the binding digit and 32 digits that keep every
// pattern alive, through the real digit collector, many times over. The time
// of each press() is one digit's cost; the last digit also works out the
// captures of the code that fires.
//
//   npm run bench:patterns            (BENCH_ROUNDS=300 codes per family)
import { performance } from 'node:perf_hooks';
import { DigitCollector } from '../lib/metaflow/collector.js';
import { MAX_CODE_DIGITS, PATTERN_BUDGET, validateMetaflows } from '../lib/metaflow/config.js';
import { DtmfRegex, MAX_PROGRAM } from '../lib/metaflow/dtmf-regex.js';
import { Matcher } from '../lib/metaflow/matcher.js';
import { builtInModules } from '../lib/stasis/modules/index.js';
import { intEnv, percentile } from './common.js';

const ROUNDS = intEnv('BENCH_ROUNDS', 300);
const WARMUP = 20;

/** As many patterns of this shape as the budget (and the 100-code limit) admits, each made distinct. */
function fill(shape: (i: number) => string): Record<string, { module: string; data: object }> {
  const patterns: Record<string, { module: string; data: object }> = {};
  let cost = 0;
  for (let i = 0; i < 100; i++) {
    const key = shape(i);
    const size = new DtmfRegex(key).size;
    if (cost + size > PATTERN_BUDGET) break;
    cost += size;
    patterns[key] = { module: 'resume', data: {} };
  }
  return patterns;
}

const distinct = (i: number) => `(?:${String(i).padStart(2, '0')})?`;

/** The shape with the largest repetition count that still compiles. */
function largest(shape: (k: number) => string): (i: number) => string {
  for (let k = 32; k > 1; k--) {
    try {
      new DtmfRegex(shape(k) + distinct(99));
      return (i) => shape(k) + distinct(i);
    } catch {
      // too large: one repetition fewer
    }
  }
  throw new Error(`no size of ${shape(1)} compiles`);
}

const FAMILIES: Record<string, { metaflows: object; digits: string }> = {
  'largest programs: nested optional repetitions': {
    metaflows: { patterns: fill(largest((k) => `(?:(?:\\d?){31}){${k}}1`)) },
    digits: '1'.repeat(MAX_CODE_DIGITS),
  },
  'most capture saves: 9 groups repeated': {
    metaflows: { patterns: fill(largest((k) => `(?:(1)(1?)(1?)(1?)(1?)(1?)(1?)(1?)(1?)){1,${k}}`)) },
    digits: '1'.repeat(MAX_CODE_DIGITS),
  },
  'widest alternation, repeated': {
    metaflows: { patterns: fill((i) => `(?:${Array.from({ length: 60 }, (_, k) => `1${k % 10}`).join('|')}|1)*${distinct(i)}`) },
    digits: '1'.repeat(MAX_CODE_DIGITS),
  },
  '100 numbers and 100 patterns alive together': {
    metaflows: {
      numbers: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`1${'1'.repeat(i % 30)}${i}`, { module: 'resume' }])),
      patterns: fill((i) => `1{1,31}(\\d)${distinct(i)}`),
    },
    digits: '1'.repeat(MAX_CODE_DIGITS),
  },
  'reference: Kazoo-like *21<target>, *22': {
    metaflows: { numbers: { 22: { module: 'resume' } }, patterns: { '21(\\d+)': { module: 'resume' } } },
    digits: `21${'1'.repeat(MAX_CODE_DIGITS - 2)}`,
  },
};

console.log(`pattern budget ${PATTERN_BUDGET} steps per digit per account, at most ${MAX_PROGRAM} per pattern; ${ROUNDS} codes of ${MAX_CODE_DIGITS} digits per family`);
let worstP99 = 0;
for (const [name, family] of Object.entries(FAMILIES)) {
  const config = validateMetaflows(family.metaflows, builtInModules());
  const matcher = new Matcher(config);
  const cost = matcher.patterns.reduce((sum, p) => sum + p.re.size, 0);
  let fired = 0;
  const collector = new DigitCollector(() => matcher, {
    pass: () => undefined,
    fire: () => void fired++,
  }, { set: () => 0, clear: () => undefined });
  const digitMs: number[] = [];
  const lastMs: number[] = [];
  for (let round = 0; round < ROUNDS + WARMUP; round++) {
    collector.press('a', '*');
    for (let i = 0; i < family.digits.length; i++) {
      const t = performance.now();
      collector.press('a', family.digits[i]!);
      const ms = performance.now() - t;
      if (round < WARMUP) continue;
      if (i === family.digits.length - 1) lastMs.push(ms);
      else digitMs.push(ms);
    }
    collector.press('a', '#');
  }
  const all = [...digitMs, ...lastMs].sort((a, b) => a - b);
  digitMs.sort((a, b) => a - b);
  lastMs.sort((a, b) => a - b);
  worstP99 = Math.max(worstP99, percentile(all, 99));
  const f = (v: number) => v.toFixed(3);
  console.log(`\n${name}: ${Object.keys(config.patterns).length} patterns, ${Object.keys(config.numbers).length} numbers, ${cost} steps; ${fired} codes fired`);
  console.log(`  a digit:        median ${f(percentile(digitMs, 50))} ms  p99 ${f(percentile(digitMs, 99))} ms  max ${f(digitMs[digitMs.length - 1]!)} ms`);
  console.log(`  the 32nd digit: median ${f(percentile(lastMs, 50))} ms  p99 ${f(percentile(lastMs, 99))} ms  max ${f(lastMs[lastMs.length - 1]!)} ms (with captures when a code fires)`);
}
console.log(`\nworst p99 of one digit over every family: ${worstP99.toFixed(3)} ms (target < 1 ms)`);

// What saving costs: the validation of the largest bodies an account can send (64 KB).
const maxSize = (i: number) => `(?:(?:\\d?){31}){16}1(?:${i})?`;
const SAVES: Record<string, object> = {
  '1,200 patterns (refused before any is compiled)': { patterns: Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [maxSize(i), { module: 'resume' }])) },
  '100 patterns over the budget (compiling stops at the budget)': { patterns: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`(?:(?:\\d?){31}){7}(?:${i})?`, { module: 'resume' }])) },
  '100 numbers and 100 patterns within the budget': FAMILIES['100 numbers and 100 patterns alive together']!.metaflows,
};
for (const [name, metaflows] of Object.entries(SAVES)) {
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    try {
      validateMetaflows(metaflows, builtInModules());
    } catch {
      // refused: what it cost is what is measured
    }
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`saving ${name}: median ${percentile(times, 50).toFixed(2)} ms, max ${times[times.length - 1]!.toFixed(2)} ms`);
}
if (worstP99 >= 1) process.exitCode = 1;
