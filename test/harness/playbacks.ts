// What konami plays to each channel (ringing, tones), as Asterisk reports it:
// the PlaybackStarted/PlaybackFinished events Asterisk sends about konami's
// channels, each confirmed by asking Asterisk for the playback itself.
import type { Ari } from '../../lib/stasis/ari.js';
import type { AriEvent } from '../../lib/stasis/ari-types.js';
import type { AriConnection } from '../../lib/stasis/connection.js';

export class PlaybackWatch {
  /** Every playback Asterisk started on a channel, in order: [channel id, media, playback id]. */
  readonly started: Array<{ channel: string; media: string; id: string }> = [];
  private readonly finished = new Set<string>();

  constructor(source: AriConnection, private readonly ari: Ari) {
    source.on('event', (e: AriEvent) => {
      if (e.type !== 'PlaybackStarted' && e.type !== 'PlaybackFinished') return;
      const target = e.playback.target_uri;
      if (!target.startsWith('channel:')) return;
      if (e.type === 'PlaybackStarted') {
        this.started.push({ channel: target.slice('channel:'.length), media: e.playback.media_uri, id: e.playback.id });
      } else {
        this.finished.add(e.playback.id);
      }
    });
  }

  /** Media playing to a channel right now, each confirmed by GET /playbacks/{id}. */
  async playing(channelId: string): Promise<string[]> {
    const out: string[] = [];
    for (const p of this.started) {
      if (p.channel !== channelId || this.finished.has(p.id)) continue;
      const now = await this.ari.getPlayback(p.id).catch(() => undefined);
      if (now && (now.state === 'playing' || now.state === 'queued')) out.push(now.media_uri);
    }
    return out;
  }

  /** Media ever started on a channel. */
  history(channelId: string): string[] {
    return this.started.filter((p) => p.channel === channelId).map((p) => p.media);
  }

  clear(): void {
    this.started.length = 0;
    this.finished.clear();
  }
}
