// Assertions on what Asterisk itself reports, never on konami's own beliefs.
import type { Ari } from '../../lib/stasis/ari.js';
import type { BridgeSnapshot, ChannelSnapshot } from '../../lib/stasis/ari-types.js';

export async function eventually<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  timeoutMs = 3000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await probe();
  }
  return last;
}

/** Bridges konami made (Asterisk reports every ARI bridge's creator as "Stasis"; konami names its own). */
export async function konamiBridges(ari: Ari): Promise<BridgeSnapshot[]> {
  return (await ari.listBridges()).filter((b) => b.name.startsWith('konami/'));
}

/** Asterisk holds no channel and no bridge at all (the harness's included). */
export async function assertNothingLeft(ari: Ari, timeoutMs = 3000): Promise<void> {
  await eventually(
    async () => ({
      channels: (await ari.listChannels()).map((c: ChannelSnapshot) => `${c.name} ${c.state}`),
      bridges: (await ari.listBridges()).map((b) => `${b.creator}:${b.id}[${b.channels.join(',')}]`),
    }),
    (v) => v.channels.length === 0 && v.bridges.length === 0,
    'Asterisk to hold no channel and no bridge',
    timeoutMs,
  );
}
