// Prometheus metrics in the text exposition format, without a dependency:
// counters and gauges, with labels.
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

type Labels = Record<string, string>;

function render(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',');
}

/** Label sets seen, by a plain spelling of them: each request counts without sorting and escaping again. */
const rendered = new Map<string, string>();
const RENDERED_KEPT = 4096;

function key(labels: Labels): string {
  const plain = JSON.stringify(labels);
  let k = rendered.get(plain);
  if (k === undefined) {
    k = render(labels);
    if (rendered.size >= RENDERED_KEPT) rendered.clear();
    rendered.set(plain, k);
  }
  return k;
}

class Family {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge') {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    if (this.values.size === 0 && this.type === 'gauge') lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(k ? `${this.name}{${k}} ${v}` : `${this.name} ${v}`);
    return lines.join('\n');
  }
}

export class Counter extends Family {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(key(labels)) ?? 0;
  }
}

export class Gauge extends Family {
  constructor(name: string, help: string, private readonly read?: () => number) {
    super(name, help, 'gauge');
  }

  set(value: number, labels: Labels = {}): void {
    this.values.set(key(labels), value);
  }

  override render(): string {
    if (this.read) this.set(this.read());
    return super.render();
  }
}

/** A Prometheus histogram without labels: counts by upper bound (cumulative when rendered), sum and count. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    // A value that is no number (a timestamp that did not parse) would spoil the sum for good.
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count++;
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i]!++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    this.buckets.forEach((b, i) => {
      cumulative += this.counts[i]!;
      lines.push(`${this.name}_bucket{le="${b}"} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

/** As long as Prometheus's default scrape interval: every stall is seen by some scrape. */
export const EVENT_LOOP_WINDOW_MS = 60_000;

/** konami's metrics. */
export class Metrics {
  readonly activeCalls: Gauge;
  readonly callsTotal = new Counter('konami_calls_total', 'Calls that entered konami.');
  readonly codesMatched = new Counter('konami_codes_matched_total', 'Feature codes matched, by module.');
  readonly transfersStarted = new Counter('konami_transfers_started_total', 'Transfers started (code or API).');
  readonly transfersEnded = new Counter('konami_transfers_ended_total', 'Transfers ended, by outcome (completed, recalled, failed, cancelled, ...) and cause.');
  readonly ariReconnects = new Counter('konami_ari_reconnects_total', 'Times the ARI connection was re-established after a loss.');
  readonly apiRequests = new Counter('konami_api_requests_total', 'API requests, by route and status.');
  readonly transferSetup = new Histogram('konami_transfer_setup_seconds',
    "From the final digit of a transfer code to the target's channel being dialled, by Asterisk's event times.",
    [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]);
  /**
   * How long the event loop was late (every call and request waited that
   * long), over the current window of EVENT_LOOP_WINDOW_MS and the one before.
   * Windows turn on a timer, never on a scrape: nobody can hide a stall by
   * reading the metrics.
   */
  /** Distributed mode: 1 for the Asterisk this instance drives, 0 while it waits on standby. */
  readonly leaseHeld = new Gauge('konami_lease_held', 'Whether this instance holds the lease of an Asterisk server (1) or waits on standby (0), by asterisk.');
  readonly eventLoopDelay = new Gauge('konami_event_loop_delay_seconds', 'Event loop delay over the last 60 to 120 s: p99 and max (10 ms resolution).');
  private loop: IntervalHistogram | undefined;
  private previous = { p99: 0, max: 0 };
  private turner: NodeJS.Timeout | undefined;

  constructor(activeCalls: () => number = () => 0) {
    this.activeCalls = new Gauge('konami_active_calls', 'Calls konami is handling now.', activeCalls);
  }

  /** Starts measuring the event loop's delay. */
  watchEventLoop(windowMs = EVENT_LOOP_WINDOW_MS): void {
    if (this.loop) return;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    this.loop = loop;
    let due = performance.now() + windowMs;
    this.turner = setInterval(() => {
      // A stall that ends just as the window turns delays this timer itself:
      // counted here, as the histogram's next sample would have been.
      const late = Math.max(0, performance.now() - due) * 1e6;
      due += windowMs;
      this.previous = { p99: loop.percentile(99), max: Math.max(loop.max, late) };
      loop.reset();
    }, windowMs);
    this.turner.unref();
  }

  stop(): void {
    this.loop?.disable();
    clearInterval(this.turner);
  }

  render(): string {
    const all: Array<{ render(): string }> = [this.activeCalls, this.callsTotal, this.codesMatched, this.transfersStarted, this.transfersEnded,
      this.transferSetup, this.ariReconnects, this.apiRequests];
    if (this.leaseHeld.values.size > 0) all.push(this.leaseHeld);
    if (this.loop) {
      this.eventLoopDelay.set(Math.max(this.previous.p99, this.loop.percentile(99)) / 1e9, { quantile: '0.99' });
      this.eventLoopDelay.set(Math.max(this.previous.max, this.loop.max) / 1e9, { quantile: '1' });
      all.push(this.eventLoopDelay);
    }
    return `${all.map((f) => f.render()).join('\n')}\n`;
  }
}

/** What calls report (a no-op by default). */
export interface CallMetrics {
  callEntered(): void;
  codeMatched(module: string): void;
  transferStarted(): void;
  transferEnded(outcome: string, cause: number | undefined): void;
  /** A transfer started by a code reached its target: final digit to dial, in ms. */
  transferSetUp(ms: number): void;
}

export const NO_METRICS: CallMetrics = {
  callEntered: () => undefined,
  codeMatched: () => undefined,
  transferStarted: () => undefined,
  transferEnded: () => undefined,
  transferSetUp: () => undefined,
};

export function callMetrics(m: Metrics): CallMetrics {
  return {
    callEntered: () => m.callsTotal.inc(),
    codeMatched: (module) => m.codesMatched.inc({ module }),
    transferStarted: () => m.transfersStarted.inc(),
    transferEnded: (outcome, cause) => m.transfersEnded.inc({ outcome, cause: cause === undefined ? '' : String(cause) }),
    transferSetUp: (ms) => m.transferSetup.observe(ms / 1000),
  };
}
