// Assertions on what Asterisk itself reports, never on konami's own beliefs.
import { readFileSync } from 'node:fs';
import type { Ari } from '../../lib/stasis/ari.js';
import type { BridgeSnapshot, ChannelSnapshot } from '../../lib/stasis/ari-types.js';
import { bridgesWithMusic, cliChannels } from '../../lib/demo/sandbox.js';
import { sandbox } from './sandbox.js';

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

/** Whether music on hold plays into a bridge (Asterisk puts an ARI_MOH announcer channel in it). */
export function mohPlaysIn(bridgeId: string): boolean {
  return bridgesWithMusic(cliChannels()).has(bridgeId);
}

/** How many lines Asterisk's full log has now (to read only what follows). */
export function logMark(): number {
  return readFileSync(sandbox('logfile').trim(), 'utf8').split('\n').length;
}

/** The music-on-hold classes Asterisk started since `mark`, as its log reports them. */
export function mohClassesStarted(mark: number): string[] {
  const lines = readFileSync(sandbox('logfile').trim(), 'utf8').split('\n').slice(mark - 1);
  return lines.flatMap((l) => /Started music on hold, class '([^']+)'/.exec(l)?.[1] ?? []);
}

/** Asterisk holds no channel and no bridge at all (the harness's included, MOH announcers included). */
export async function assertNothingLeft(ari: Ari, timeoutMs = 3000): Promise<void> {
  await eventually(
    async () => ({
      channels: (await ari.listChannels()).map((c: ChannelSnapshot) => `${c.name} ${c.state}`),
      bridges: (await ari.listBridges()).map((b) => `${b.creator}:${b.id}[${b.channels.join(',')}]`),
      cli: cliChannels().map((c) => c.name),
    }),
    (v) => v.channels.length === 0 && v.bridges.length === 0 && v.cli.length === 0,
    'Asterisk to hold no channel and no bridge',
    timeoutMs,
  );
}
