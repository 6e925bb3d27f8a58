// A fixed key sequence watched for in a party's digits, such as a transfer's
// takeback code (Kazoo's takeback_dtmf, `*1`): it is pressed when the last
// keys pressed, each within `gapMs` of the one before, spell it. No timer: the
// time between keys is read from the clock, so nothing is left to clear.
export class KeySequence {
  private typed = '';
  private last = -Infinity;

  constructor(readonly keys: string, private readonly gapMs: number, private readonly now: () => number = Date.now) {}

  /** A key pressed; true when it completes the sequence (which then starts afresh). */
  press(key: string): boolean {
    const at = this.now();
    if (at - this.last > this.gapMs) this.typed = '';
    this.last = at;
    this.typed = (this.typed + key.toUpperCase()).slice(-this.keys.length);
    if (this.typed !== this.keys) return false;
    this.typed = '';
    return true;
  }
}
