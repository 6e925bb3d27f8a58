// One call as Asterisk shows it, in people's names: who is in the call's
// bridge, who in the consultation, and whether music plays to the call's
// bridge. Read from ARI's bridges and from the CLI's channel list (ARI hides
// the announcer channel that plays a bridge's music).
import type { Ari } from '../stasis/ari.js';
import { bridgesWithMusic, cliChannels, type CliChannel } from './sandbox.js';

export interface Picture {
  /** People in the call's bridge (konami/<call id>), sorted. */
  main: string[];
  /** People in the consultation bridge (konami/<call id>/consult), sorted; empty when there is none. */
  consult: string[];
  /** Music on hold plays into the call's bridge. */
  music: boolean;
  /** The call's bridge exists. */
  bridged: boolean;
}

export class Scene {
  /** Channel id → person. */
  private readonly names = new Map<string, string>();

  constructor(
    private readonly ari: Pick<Ari, 'listBridges'>,
    readonly callId: string,
    private readonly cli: () => CliChannel[] = cliChannels,
  ) {}

  /** `channelId` is `name` from now on (konami's own channel for that person). */
  name(channelId: string, name: string): void {
    this.names.set(channelId, name);
  }

  async picture(): Promise<Picture> {
    const bridges = await this.ari.listBridges();
    const main = bridges.find((b) => b.name === `konami/${this.callId}`);
    const consult = bridges.find((b) => b.name === `konami/${this.callId}/consult`);
    const who = (ids: readonly string[] | undefined) => (ids ?? []).map((id) => this.names.get(id) ?? id).sort();
    return {
      main: who(main?.channels),
      consult: who(consult?.channels),
      music: main !== undefined && bridgesWithMusic(this.cli()).has(main.id),
      bridged: main !== undefined,
    };
  }

  /** Polls until `ok` holds for Asterisk's picture; rejects after timeoutMs saying what was expected and what was seen. */
  until(ok: (p: Picture) => boolean, expected: string, timeoutMs = 10_000): Promise<Picture> {
    return poll(() => this.picture(), ok, expected, describe, timeoutMs);
  }
}

/** Asks `probe` every 100 ms until `ok` holds; rejects after timeoutMs with what was expected and the last answer. */
export async function poll<T>(probe: () => Promise<T>, ok: (v: T) => boolean, expected: string, shown: (v: T) => string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`expected ${expected}; Asterisk shows ${shown(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** "the call's bridge: Alice, Bob; music: no; consultation: none". */
export function describe(p: Picture): string {
  if (!p.bridged && p.consult.length === 0) return 'no bridge for this call';
  return `the call's bridge: ${p.main.join(', ') || 'nobody'}; music: ${p.music ? 'yes' : 'no'}; consultation: ${p.consult.join(', ') || 'none'}`;
}

/** Exactly these people, in any order. */
export const only = (people: readonly string[], ...want: string[]): boolean =>
  people.length === want.length && want.every((w) => people.includes(w));
