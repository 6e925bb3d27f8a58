// Benchmark: time from a feature code's final digit to the module call, on the
// real Asterisk, for codes that fire on their last digit (*22) and codes ended
// by # (*212600#). Two clocks: from the moment konami's process received the
// final ChannelDtmfReceived, and from Asterisk's own timestamp of that event
// (which adds the websocket hop; millisecond resolution).
//
//   npm run bench:codes            (BENCH_CALLS=4 BENCH_CODES=10 per call and kind)
import Joi from 'joi';
import { performance } from 'node:perf_hooks';
import { validateMetaflows } from '../lib/metaflow/config.js';
import type { AriEvent } from '../lib/stasis/ari-types.js';
import type { CallModule } from '../lib/stasis/features.js';
import { eventually } from '../test/harness/asterisk.js';
import { startTestKonami } from '../test/harness/konami.js';
import { Phones, type Phone } from '../test/harness/phones.js';
import { intEnv, summary, withSandbox } from './common.js';

const CALLS = intEnv('BENCH_CALLS', 4);
const CODES = intEnv('BENCH_CODES', 10);
const KINDS = { 'early-firing *22': '*22', '#-terminated *212600#': '*212600#' } as const;

await withSandbox(async (env) => {
  const lastDigit = new Map<string, { at: number; asteriskMs: number }>();
  const samples: Record<string, { local: number[]; asterisk: number[] }> = {};
  let current = '';
  const ran: Array<() => void> = [];
  const probe: CallModule = {
    name: 'probe',
    dataSchema: Joi.object().unknown(true),
    description: 'records when it ran',
    async run(call) {
      const now = performance.now();
      const wall = Date.now();
      const d = lastDigit.get(call.id);
      if (d) {
        samples[current]!.local.push(now - d.at);
        samples[current]!.asterisk.push(wall - d.asteriskMs);
      }
      ran.shift()?.();
    },
  };
  const phones = await Phones.connect(env);
  await phones.reset();
  const konami = await startTestKonami(env, { LOG_LEVEL: 'warn' }, { modules: [probe] });
  // Registered after konami's own listener: sees each event just after konami queued it.
  konami.ari.on('event', (e: AriEvent) => {
    if (e.type === 'ChannelDtmfReceived') lastDigit.set(e.channel.id, { at: performance.now(), asteriskMs: Date.parse(e.timestamp) });
  });
  const { account } = await konami.store.create('bench');
  await konami.store.setMetaflows(account.id, validateMetaflows({
    numbers: { 22: { module: 'probe' } },
    patterns: { '21(\\d+)': { module: 'probe' } },
  }, konami.modules));

  try {
    const calls: Array<{ alice: Phone; bob: Phone }> = [];
    for (let i = 0; i < CALLS; i++) {
      const number = `${4000 + i}`;
      const alice = await phones.call(number, { account: account.id });
      const bob = await phones.incoming(number);
      await bob.answer();
      await eventually(async () => konami.app.callOf(alice.peerId!)?.phase, (p) => p === 'bridged', 'bridged');
      calls.push({ alice, bob });
    }
    for (const [kind, code] of Object.entries(KINDS)) {
      current = kind;
      samples[kind] = { local: [], asterisk: [] };
      for (let n = 0; n < CODES; n++) {
        // Every call presses the code at once: CALLS codes in flight together.
        const done = calls.map(() => new Promise<void>((r) => ran.push(r)));
        await Promise.all(calls.map(({ alice }) => alice.press(code, 80, 80)));
        await Promise.race([Promise.all(done), new Promise((_, rej) => setTimeout(() => rej(new Error(`${kind}: a module call is missing`)), 10_000))]);
      }
    }
    for (const { alice, bob } of calls) {
      await alice.hangup();
      await bob.waitHangup();
    }
  } finally {
    await konami.stop(2000);
    await phones.reset();
    await phones.stop();
  }

  console.log(`feature code latency, final digit -> module call (${CALLS} calls pressing together, ${CODES} codes each per kind)`);
  for (const [kind, s] of Object.entries(samples)) {
    console.log(`  ${kind.padEnd(24)} from receipt in konami:   ${summary(s.local)}`);
    console.log(`  ${''.padEnd(24)} from Asterisk's event time: ${summary(s.asterisk, 'ms', 0)}`);
  }
});
