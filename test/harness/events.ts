// A client of konami's server-sent events, as an integrator's program reads
// them: each event's name and data, in order, with a wait for the one a test
// expects.
import type { ChannelEvent } from '../../lib/stasis/call-events.js';

export class EventStream {
  readonly events: ChannelEvent[] = [];
  private readonly controller = new AbortController();
  private waiters: Array<() => void> = [];
  private done: Promise<void> | undefined;
  status = 0;

  /** Opens the stream; resolves once konami answered (status set). */
  static async open(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
    const s = new EventStream();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: s.controller.signal });
    s.status = res.status;
    if (res.ok && res.body) s.done = s.read(res.body).catch(() => undefined);
    return s;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        const name = block.split('\n').find((l) => l.startsWith('event: '))?.slice(7);
        if (!data || !name) continue;
        const event = JSON.parse(data) as ChannelEvent;
        if (event.event_name !== name) throw new Error(`event ${name} carries ${event.event_name}`);
        this.events.push(event);
        for (const w of this.waiters) w();
      }
    }
  }

  /** Waits until an event satisfies `pred` (seen already or to come). */
  async next(pred: (e: ChannelEvent) => boolean, what: string, timeoutMs = 5000): Promise<ChannelEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no event ${what} within ${timeoutMs} ms; had: ${this.events.map((e) => `${e.event_name} ${e.channel.id}`).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  /** Resolves when konami ended the stream. */
  async ended(): Promise<void> {
    await this.done;
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}
