// Konami's bridges for one call, as Asterisk reports them.
import type { Ari } from '../../lib/stasis/ari.js';
import { eventually, konamiBridges } from './asterisk.js';
import type { Phone, Phones } from './phones.js';

/** Konami's own channel for a phone konami dialled (the other half of its Local pair). */
export const side = (p: Phone): string => p.id.replace(/;2$/, '');

/** Members of a call's bridges, sorted: "main" for the call's bridge, "consult" for a consultation. */
export async function bridgesOf(ari: Ari, callId: string): Promise<Record<string, string[]>> {
  const out: Array<[string, string[]]> = [];
  for (const b of await konamiBridges(ari)) {
    const key = b.name === `konami/${callId}` ? 'main' : b.name === `konami/${callId}/consult` ? 'consult' : b.name;
    out.push([key, [...b.channels].sort()]);
  }
  return Object.fromEntries(out.sort(([x], [y]) => x.localeCompare(y)));
}

export async function expectBridges(ari: Ari, callId: string, want: Record<string, string[]>, what: string): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(want).map(([k, v]) => [k, [...v].sort()] as [string, string[]])
    .sort(([x], [y]) => x.localeCompare(y)));
  await eventually(() => bridgesOf(ari, callId), (b) => JSON.stringify(b) === JSON.stringify(sorted), what, 4000);
}

/** Alice (1001) calls `to` through konami, Bob answers, and Asterisk shows the two of them in the call's bridge. */
export async function aliceCallsBob(phones: Phones, to: string, account: string): Promise<{ alice: Phone; bob: Phone; callId: string }> {
  const alice = await phones.call(to, { account, from: { number: '1001', name: 'Alice' } });
  const bob = await phones.incoming(to);
  await bob.answer();
  await alice.waitState('Up');
  const callId = alice.peerId!;
  await expectBridges(phones.ari, callId, { main: [callId, side(bob)] }, 'Alice and Bob bridged');
  return { alice, bob, callId };
}

/** Alice presses *21<target>#: Mary's phone rings, Bob holds, Alice waits in the consultation (as Asterisk shows it). */
export async function aliceTransfersTo(phones: Phones, target: string, call: { alice: Phone; bob: Phone; callId: string }): Promise<Phone> {
  await call.alice.press(`*21${target}#`);
  const mary = await phones.incoming(target);
  await mary.ring();
  await expectBridges(phones.ari, call.callId, { main: [side(call.bob)], consult: [call.callId] }, 'Bob holds, Alice waits in consultation');
  return mary;
}

/** The id of konami's bridge for the call, as Asterisk reports it. */
export async function mainBridgeOf(ari: Ari, callId: string): Promise<string> {
  const b = (await konamiBridges(ari)).find((x) => x.name === `konami/${callId}`);
  if (!b) throw new Error(`no bridge for call ${callId}`);
  return b.id;
}
