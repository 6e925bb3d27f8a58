/**
 * Runs tasks one at a time in the order they were pushed. Every event and
 * command of one call goes through one of these, so a call's logic never sees
 * two things at once. A failing task is reported and does not stop the queue.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly onError: (err: unknown) => void) {}

  push(task: () => Promise<void> | void): Promise<void> {
    this.waiting++;
    const run = this.tail
      .then(task)
      .catch(this.onError)
      .finally(() => {
        this.waiting--;
      });
    this.tail = run;
    return run;
  }

  /** Tasks pushed and not yet finished. */
  get length(): number {
    return this.waiting;
  }

  /** Resolves when everything pushed so far has run. */
  drained(): Promise<void> {
    return this.tail;
  }
}
