// Summary of V8 CPU profiles (.cpuprofile, as written by node --cpu-prof):
// where konami's busy time goes, by package (a dependency under
// node_modules), konami's own files, Node's internals, garbage collection
// and the rest V8 reports, then the busiest functions.
//
//   BENCH_CPU_PROF=test-output/prof BENCH_SAMPLES=0 BENCH_CALLS=0 npm run bench:transfer
//   npx tsx bench/profile.ts --skip=3000 test-output/prof/*.cpuprofile
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

// --skip=<ms>: leave out the first milliseconds of each profile (start-up: loading modules, reading the store).
const skipArg = process.argv.find((a) => a.startsWith('--skip='));
const SKIP_US = skipArg ? Number(skipArg.slice(7)) * 1000 : 0;

/** The owner of a frame: a package, one of konami's files, Node's internals or what V8 names itself. */
function owner(url: string, fn: string): string {
  if (url === '') return fn === '(program)' || fn === '(idle)' || fn === '(garbage collector)' ? fn : `(native) ${fn}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/(lib\/.*)$/.exec(url);
  return own ? `konami ${own[1]!.replace(/^lib\//, '')}` : url;
}

const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  console.error('usage: tsx bench/profile.ts [--skip=<ms>] <file.cpuprofile>...');
  process.exit(2);
}
const byOwner = new Map<string, number>();
const byFunction = new Map<string, number>();
const byCaller = new Map<string, number>();
let busy = 0;
let idle = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Node's internals and native code are charged to the nearest package or konami file that called them.
  const caller = (id: number): string => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { url, functionName } = nodes.get(at)!.callFrame;
      const who = owner(url, functionName);
      if (who !== 'node internals' && !who.startsWith('(native)')) return who;
    }
    return 'node internals';
  };
  let at = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (at < SKIP_US) return;
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      return;
    }
    busy += us;
    const who = owner(url, functionName);
    byOwner.set(who, (byOwner.get(who) ?? 0) + us);
    const by = caller(id);
    byCaller.set(by, (byCaller.get(by) ?? 0) + us);
    const fn = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|lib)\//, '$1/')}:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  });
}
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
console.log(`${files.length} profile(s): busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`);
console.log('self time by owner:');
for (const [who, us] of top(byOwner, 20)) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${who}`);
console.log('self time with Node\'s internals charged to their caller:');
for (const [who, us] of top(byCaller, 20)) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${who}`);
console.log('busiest functions (self time):');
for (const [fn, us] of top(byFunction, 25)) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${fn}`);
