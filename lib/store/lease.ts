// Which instance drives an Asterisk server: a lease row in PostgreSQL with a
// deadline on the database's clock. The holder renews it every third of its
// term; the others try to take it as often, and only a lease past its
// deadline can be taken (a new term: its epoch grows).
//
// Fencing. The holder counts its term from when it *sent* its last renewal
// that succeeded, on its own monotonic clock, and stops acting a margin
// before that term ends; the database ends the same term later still (it
// counts from when it ran the renewal). So an instance cut from the database
// stops before any other can take its place. Writes of the calls' journal
// carry the epoch and are refused by the database once the term is over, so
// a late write of a former holder cannot overwrite its successor's.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Logger } from '../log.js';

/** How soon a holder tries again after a renewal failed (ms). */
const RETRY_SOON_MS = 200;

export interface LeaseTiming {
  /** A term, from one renewal (ms). */
  termMs: number;
  /** How often the holder renews, and a standby tries (ms). */
  renewEveryMs: number;
  /** The holder stops acting this long before its term would end (ms). */
  marginMs: number;
}

/** A term of `seconds`: renewed every third of it, with a sixth of it as margin. */
export function leaseTiming(seconds: number): LeaseTiming {
  const termMs = seconds * 1000;
  return { termMs, renewEveryMs: Math.round(termMs / 3), marginMs: Math.round(termMs / 6) };
}

/** What the holder writes with: refused by the database once its term is over. */
export interface Fence {
  holder: string;
  epoch: number;
}

/**
 * Events: 'acquired' (epoch) when this instance begins a term, 'lost'
 * (reason) when a term it held is over (its deadline passed without a
 * renewal, or the database says another term began). A lost lease is not
 * tried again: the instance stops (what it knew of the calls may be stale),
 * and a new one starts as a standby.
 */
export class AsteriskLease extends EventEmitter {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private heldEpoch: number | undefined;
  /** Until when (performance.now()) this instance may act. */
  private actUntil = 0;
  private stopped = false;
  /** Where this instance's API answers (for the other instances). */
  private address = '';
  /** The last attempt failed (logged once per outage on standby). */
  private unreachable = false;

  constructor(
    private readonly url: string,
    /** The Asterisk server, as the journal names it. */
    readonly asterisk: string,
    /** This instance, as the lease row names it. */
    readonly holder: string,
    private readonly timing: LeaseTiming,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Holds the lease now: this instance may drive the Asterisk server. */
  get held(): boolean {
    return this.heldEpoch !== undefined && performance.now() < this.actUntil;
  }

  /** The term held (undefined: none). */
  get fence(): Fence | undefined {
    return this.held ? { holder: this.holder, epoch: this.heldEpoch! } : undefined;
  }

  /** Starts trying (and, once held, renewing); `address`: where this instance's API answers. */
  start(address: string): void {
    this.address = address;
    this.stopped = false;
    void this.tick();
  }

  /** Resolves when this instance holds the lease. */
  acquired(): Promise<number> {
    if (this.held) return Promise.resolve(this.heldEpoch!);
    return new Promise((resolve) => this.once('acquired', resolve));
  }

  /**
   * Stops renewing; with `release`, ends the term at once so a standby takes
   * over without waiting for the deadline (konami stops in good order).
   */
  async stop(release: boolean): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    const epoch = this.heldEpoch;
    this.heldEpoch = undefined;
    if (release && epoch !== undefined) await this.release(epoch);
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }

  /** Ends a term of this instance at once, so a standby need not wait for its deadline. */
  private async release(epoch: number): Promise<void> {
    try {
      await this.client?.query('UPDATE leases SET expires_at = now() WHERE asterisk = $1 AND holder = $2 AND epoch = $3', [this.asterisk, this.holder, epoch]);
      this.log.info({ asterisk: this.asterisk, epoch }, 'lease released');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not release the lease: the next instance waits for its deadline');
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const sent = performance.now();
    let failed = false;
    try {
      const epoch = await this.claim();
      if (this.stopped) {
        // Stopped while the claim was on its way: a term it began is given back at once.
        if (epoch !== undefined && this.heldEpoch === undefined) await this.release(epoch);
        return;
      }
      if (this.unreachable) this.log.info('database reachable again');
      this.unreachable = false;
      if (epoch === undefined) {
        if (this.heldEpoch !== undefined) this.lose('another instance holds the lease');
      } else if (epoch !== this.heldEpoch) {
        // A term this instance did not know it had lost (it lapsed, and was taken back here): the former one is over.
        if (this.heldEpoch !== undefined) this.lose('the term lapsed');
        else this.begin(epoch, sent);
      } else if (!this.held) {
        // The renewal came back after this instance had stopped acting: what it missed meanwhile is lost to it.
        this.lose('not renewed in time');
      } else this.extend(sent);
    } catch (err) {
      failed = true;
      // A holder says so every time (its term is running out); a standby once per outage.
      if (this.heldEpoch !== undefined || !this.unreachable) {
        this.log.warn({ err: (err as Error).message, holding: this.heldEpoch !== undefined }, 'lease not renewed: database unreachable');
      }
      this.unreachable = true;
      // Not awaited: across a silent network the goodbye may never be answered.
      this.client?.end().catch(() => undefined);
      this.client = undefined;
      if (this.heldEpoch !== undefined && !this.held) this.lose('not renewed in time');
    }
    // A holder whose renewal failed tries again soon, while its term still runs.
    const next = failed && this.heldEpoch !== undefined ? Math.min(RETRY_SOON_MS, this.timing.renewEveryMs) : this.timing.renewEveryMs;
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), next);
  }

  /** Renews this instance's live term, or takes a lapsed one; answers the epoch held, or undefined when another holds it. */
  private async claim(): Promise<number | undefined> {
    if (!this.client) {
      const client = new pg.Client({
        connectionString: this.url, keepAlive: true, application_name: 'konami-lease',
        connectionTimeoutMillis: this.timing.renewEveryMs, query_timeout: this.timing.renewEveryMs,
      });
      client.on('error', () => undefined); // seen by the next query
      await client.connect();
      this.client = client;
    }
    // A holder waits no longer than its term runs; a standby, a renewal period.
    const wait = this.heldEpoch !== undefined ? Math.max(RETRY_SOON_MS, this.actUntil - performance.now()) : this.timing.renewEveryMs;
    // The term's row (lease_terms) changes only when a new term begins: the journal's writes lock it (see
    // pg-journal.ts), so a new holder waits for the writes of the last term, and a renewal never waits for them.
    const { rows } = await this.client.query<{ epoch: string }>({
      text: `WITH claimed AS (
               INSERT INTO leases AS l (asterisk, holder, address, epoch, expires_at)
               VALUES ($1, $2, $3, 1, now() + $4 * interval '1 millisecond')
               ON CONFLICT (asterisk) DO UPDATE SET
                 epoch = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
                 holder = excluded.holder, address = excluded.address, expires_at = excluded.expires_at
               WHERE (l.holder = excluded.holder AND l.expires_at > now()) OR l.expires_at <= now()
               RETURNING asterisk, holder, epoch
             ), term AS (
               INSERT INTO lease_terms AS t (asterisk, holder, epoch)
               SELECT c.asterisk, c.holder, c.epoch FROM claimed c
               WHERE NOT EXISTS (SELECT 1 FROM lease_terms x WHERE x.asterisk = c.asterisk AND x.epoch = c.epoch)
               ON CONFLICT (asterisk) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch
             )
             SELECT epoch FROM claimed`,
      values: [this.asterisk, this.holder, this.address, this.timing.termMs],
      query_timeout: Math.round(wait),
    } as pg.QueryConfig);
    return rows[0] ? Number(rows[0].epoch) : undefined;
  }

  private begin(epoch: number, sent: number): void {
    this.heldEpoch = epoch;
    this.extend(sent);
    this.log.info({ asterisk: this.asterisk, epoch }, 'lease acquired: driving this Asterisk');
    this.emit('acquired', epoch);
  }

  /** The term runs on from when the renewal was sent, less the margin. */
  private extend(sent: number): void {
    this.actUntil = sent + this.timing.termMs - this.timing.marginMs;
    this.armDeadline();
  }

  /**
   * Loses the term when it runs out unrenewed. A timer may fire a little
   * before the monotonic clock reaches its end: it is then set again for
   * what is left, so the loss is never missed.
   */
  private armDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (this.heldEpoch === undefined) return;
      if (this.held) this.armDeadline();
      else this.lose('not renewed in time');
    }, Math.max(1, this.actUntil - performance.now() + 1));
  }

  private lose(reason: string): void {
    const epoch = this.heldEpoch;
    this.heldEpoch = undefined;
    this.actUntil = 0;
    this.stopped = true;
    clearTimeout(this.deadline);
    clearTimeout(this.timer);
    this.log.error({ asterisk: this.asterisk, epoch, reason }, 'lease lost: this instance must stop driving this Asterisk');
    this.emit('lost', reason);
  }
}

/** How long the list of the other instances is reused. */
const PEERS_KEPT_MS = 1000;

/**
 * The addresses of the instances holding a live lease, this one aside:
 * those whose calls this one does not drive. Read at most once a second.
 */
export function peerAddresses(pool: pg.Pool, self: string): () => Promise<string[]> {
  let kept: { at: number; addresses: Promise<string[]> } | undefined;
  return () => {
    const now = performance.now();
    if (!kept || now - kept.at > PEERS_KEPT_MS) {
      const addresses = pool.query<{ address: string }>('SELECT DISTINCT address FROM leases WHERE expires_at > now() AND holder <> $1', [self])
        .then((r) => r.rows.map((row) => row.address));
      // A failed read is not kept: the next request reads again.
      addresses.catch(() => (kept = undefined));
      kept = { at: now, addresses };
    }
    return kept.addresses;
  };
}
