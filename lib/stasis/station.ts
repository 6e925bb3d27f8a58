// One Asterisk server as konami drives it: its ARI connection, its Stasis
// application, the journal of its calls and, in distributed mode, the lease
// that says this instance may drive it. An instance drives one station per
// ARI_URL. A station takes its calls back (from the journal, then against
// what Asterisk reports) when it starts, and again after every
// reconnection; it is not ready until it has, since events may have been
// missed meanwhile.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CallJournal } from '../store/call-journal.js';
import type { AsteriskLease } from '../store/lease.js';
import { StasisApp, type AppSettings } from './app.js';
import type { Call } from './call.js';
import { AriConnection, type AriSettings } from './connection.js';

export interface StationParts {
  ari: AriSettings;
  app: Omit<AppSettings, 'journal' | 'app'>;
  journal: CallJournal & { close(): Promise<void> };
  /** Distributed mode: this instance drives the station only while it holds this. */
  lease?: AsteriskLease;
  metrics: Metrics;
  /** Distributed mode: how long the station may go without reaching its Asterisk before it gives the server up (0: never). */
  giveUpMs?: number;
}

/** Events: 'gave up' (reason): in distributed mode, the station let its server go (its lease is given back). */
export class Station extends EventEmitter {
  readonly ari: AriConnection;
  readonly app: StasisApp;
  readonly journal: CallJournal & { close(): Promise<void> };
  readonly lease: AsteriskLease | undefined;
  private reconciled = false;
  private reconciling: Promise<void> | undefined;
  private again = false;
  private started = false;

  private unreachable: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly giveUpMs: number;

  constructor(readonly asterisk: string, parts: StationParts, private readonly log: Logger) {
    super();
    this.giveUpMs = parts.giveUpMs ?? 0;
    this.journal = parts.journal;
    this.lease = parts.lease;
    this.ari = new AriConnection(parts.ari, log.child({ component: 'ari' }));
    this.app = new StasisApp(this.ari, { ...parts.app, app: parts.ari.app, journal: parts.journal }, log);
    let connections = 0;
    this.ari.on('connected', () => {
      if (++connections > 1) {
        parts.metrics.ariReconnects.inc();
        void this.reconcile();
      }
    });
    this.ari.on('disconnected', () => {
      this.reconciled = false;
      this.log.warn('ARI disconnected: not ready');
      this.watchReach();
    });
    this.ari.on('event', (e) => this.app.handle(e));
    this.ari.on('connected', () => {
      clearTimeout(this.unreachable);
      this.unreachable = undefined;
    });
    if (this.lease) {
      const lease = this.lease;
      // Nothing this instance does once its term is over reaches Asterisk.
      this.ari.onlyWhile(() => lease.held);
      parts.metrics.leaseHeld.set(0, { asterisk: this.asterisk });
      lease.on('acquired', () => parts.metrics.leaseHeld.set(1, { asterisk: this.asterisk }));
      lease.on('lost', () => {
        parts.metrics.leaseHeld.set(0, { asterisk: this.asterisk });
        void this.ari.stop();
      });
    }
  }

  /** Drives this Asterisk: its calls taken back and reconciled, ARI connected. */
  get ready(): boolean {
    return this.started && this.ari.connected && this.reconciled && (this.lease?.held ?? true);
  }

  /** Waiting for another instance's lease (distributed mode). */
  get standby(): boolean {
    return this.lease !== undefined && !this.lease.held;
  }

  /** Whether this station drives the call (for the API's answers). */
  drives(call: Call): boolean {
    return this.app.activeCalls.get(call.id) === call;
  }

  /**
   * Takes the calls kept for this Asterisk back, connects and reconciles. In
   * distributed mode it first waits (on standby) for the lease, which
   * `advertise` names this instance's API in.
   */
  async start(advertise: string): Promise<void> {
    if (this.lease) {
      this.lease.start(advertise);
      this.log.info({ asterisk: this.asterisk, instance: this.lease.holder }, 'standby: waiting for the lease of this Asterisk');
      await this.lease.acquired();
    }
    const taken = this.app.restore(await this.journal.loadAll());
    if (taken > 0) this.log.info({ calls: taken }, 'calls kept by the previous process taken back');
    // An Asterisk this instance cannot reach from the start is given up the same way.
    this.watchReach();
    await this.ari.start();
    this.started = true;
    await this.reconcile();
  }

  /**
   * Hands the calls over (they stay up in Asterisk, kept in the journal, for
   * the next instance) or hangs them up, after transfers in flight had up to
   * graceMs to finish; then disconnects and lets go of the lease.
   */
  async stop(mode: 'handover' | 'hangup', graceMs: number): Promise<void> {
    const { app } = this;
    // Stopping: nothing is given up on the way (the lease is given back at the end, the journal written first).
    this.stopping = true;
    clearTimeout(this.unreachable);
    app.stopAccepting();
    const handOver = (async () => {
      if (!(await app.transfersSettled(graceMs))) {
        this.log.warn({ transfers: app.transfersInFlight }, 'transfers still in progress after the grace period');
      }
      if (mode === 'hangup') {
        if (app.activeCalls.size > 0) this.log.warn({ calls: app.activeCalls.size }, 'calls still up at shutdown: hanging them up');
        await Promise.all([...app.activeCalls.values()].map((c) => c.hangUpAll()));
        await app.drained(5000);
      } else {
        await app.settled();
        if (app.activeCalls.size > 0) {
          this.log.info({ calls: app.activeCalls.size, transfers: app.transfersInFlight },
            'calls handed over: they stay up in Asterisk and the next konami takes them back');
        }
      }
    })();
    // An Asterisk that no longer answers must not keep konami from stopping.
    let deadline: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      deadline = setTimeout(() => {
        this.log.error({ calls: app.activeCalls.size }, 'shutdown did not finish in time: stopping anyway');
        resolve();
      }, graceMs + 10_000);
    });
    await Promise.race([handOver, late]);
    clearTimeout(deadline);
    await this.ari.stop();
    // Steps that were running when the events stopped keep their records too.
    await Promise.race([app.settled(), new Promise((r) => setTimeout(r, 2000))]);
    await this.journal.close();
    // The journal is written: the next instance may take the calls at once.
    await this.lease?.stop(true);
  }

  /**
   * Distributed mode: while this instance holds the lease but cannot reach
   * the server, another instance may; after `giveUpMs` the lease is given
   * back and the station gives the server up (the instance then stops, to
   * start again as a standby).
   */
  private watchReach(): void {
    const { lease, giveUpMs } = this;
    if (!lease || giveUpMs <= 0 || this.unreachable || this.stopping) return;
    this.unreachable = setTimeout(() => {
      this.unreachable = undefined;
      if (this.ari.connected || !lease.held || this.stopping) return;
      const reason = `Asterisk unreachable for ${giveUpMs / 1000} s while driving it`;
      this.log.error({ asterisk: this.asterisk }, `${reason}: giving it up to an instance that may reach it`);
      void this.ari.stop();
      void lease.stop(true).then(() => this.emit('gave up', reason));
    }, giveUpMs);
    this.unreachable.unref();
  }

  /** Compares the calls with Asterisk's after every (re)connection; retried while connected. */
  private reconcile(): Promise<void> {
    if (this.reconciling) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciled = false;
    this.reconciling = (async () => {
      do {
        this.again = false;
        try {
          await this.app.reconcile();
        } catch (err) {
          this.log.error({ err: (err as Error).message }, 'could not reconcile with Asterisk; retrying in 1 s');
          this.again = this.ari.connected;
          if (this.again) await new Promise((r) => setTimeout(r, 1000));
        }
      } while (this.again && this.ari.connected);
      this.reconciled = this.ari.connected;
      this.reconciling = undefined;
    })();
    return this.reconciling;
  }
}

/** Every station an instance drives, as one directory of calls for the API and the event streams. */
export class Stations {
  constructor(readonly all: readonly Station[]) {}

  readonly activeCalls = {
    values: (): Iterable<Call> => this.all.flatMap((s) => [...s.app.activeCalls.values()]),
  };

  get size(): number {
    return this.all.reduce((n, s) => n + s.app.activeCalls.size, 0);
  }

  callOf(channelId: string): Call | undefined {
    for (const s of this.all) {
      const call = s.app.callOf(channelId);
      if (call) return call;
    }
    return undefined;
  }

  hangup(channelId: string, cause: number): Promise<void> {
    const station = this.all.find((s) => s.app.callOf(channelId)) ?? this.all[0]!;
    return station.app.hangup(channelId, cause);
  }

  /** The call's Asterisk can be commanded now. */
  available(call: Call): boolean {
    return this.all.some((s) => s.drives(call) && s.ready);
  }

  watch(watcher: (call: Call) => void): () => void {
    const stops = this.all.map((s) => s.app.watch(watcher));
    return () => {
      for (const stop of stops) stop();
    };
  }
}
