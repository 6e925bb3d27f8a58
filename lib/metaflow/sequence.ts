// A fixed key sequence watched for in one party's keys, such as a transfer's
// takeback code (Kazoo's takeback_dtmf, `*1`). Keys that may begin it are held
// back, so the other party hears nothing of it; keys that turn out not to be
// it, or that wait longer than the digit timeout, are given back in order to
// be taken as ordinary keys. Like the collector it holds no timer of its own.
import type { CollectorTimers } from './collector.js';

export class KeyWatch {
  readonly keys: string;
  /** The keys held: a beginning of the sequence. */
  private typed = '';
  private timer: unknown;

  constructor(
    keys: string,
    private readonly gapMs: number,
    /** Keys that are not the sequence after all, in the order pressed. */
    private readonly release: (keys: string) => void,
    private readonly timers: CollectorTimers,
  ) {
    this.keys = keys.toUpperCase();
  }

  /** A key pressed; true when it completes the sequence. */
  press(key: string): boolean {
    this.stopTimer();
    this.typed += key.toUpperCase();
    if (this.typed === this.keys) {
      this.typed = '';
      return true;
    }
    // Keep the longest end of what was typed that may still begin the sequence; give back the rest.
    let keep = this.typed.length;
    while (keep > 0 && !this.keys.startsWith(this.typed.slice(this.typed.length - keep))) keep--;
    const given = this.typed.slice(0, this.typed.length - keep);
    this.typed = this.typed.slice(this.typed.length - keep);
    if (given) this.release(given);
    if (this.typed) this.timer = this.timers.set(() => this.giveUp(), this.gapMs);
    return false;
  }

  /** Stops watching: held keys are dropped (their party left or the watch ended). */
  dispose(): void {
    this.stopTimer();
    this.typed = '';
  }

  private giveUp(): void {
    this.timer = undefined;
    const held = this.typed;
    this.typed = '';
    if (held) this.release(held);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }
}
