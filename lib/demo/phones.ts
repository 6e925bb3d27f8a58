// Simulated phones: an ARI application of their own that places calls into
// the sandbox's konami-entry context and answers the calls konami makes to
// numbers the sandbox hands to that application. Each Phone is one half of a
// Local channel pair: what it is told (state, hang-up cause, digits) is what a
// real handset would see. `npm run demo` plays its people with them, and the
// integration tests theirs.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { silentLogger } from '../log.js';
import type { AriEvent, ChannelState } from '../stasis/ari-types.js';
import { AriConnection } from '../stasis/connection.js';
import type { SandboxEnv } from './sandbox.js';

export interface CallOptions {
  /** The account konami should use (the dialplan's account= argument). */
  account?: string;
  /** An explicit dial string for konami (the dialplan's dial= argument). */
  dial?: string;
  /** Caller id presented to konami. */
  from?: { number: string; name?: string };
  /**
   * Seconds the dialplan keeps trying Stasis() while no konami has the
   * application (a takeover in distributed mode), before its fallback.
   */
  wait?: number;
}

export class Phone extends EventEmitter {
  state: ChannelState;
  /** The cause Asterisk gave when this phone's line was hung up. */
  cause: number | undefined;
  readonly events: AriEvent[] = [];
  /** Digits this phone heard as DTMF. */
  heard = '';
  private hungUp = false;
  private requestCause: number | undefined;

  constructor(
    private readonly ari: AriConnection,
    /** The harness's channel id. */
    readonly id: string,
    /** The phone number: the callee for phones placing calls, the number rung for incoming ones. */
    readonly number: string,
    state: ChannelState,
    /** For a phone placing a call: konami's channel id for it, which is also the call id. */
    readonly peerId?: string,
  ) {
    super();
    this.state = state;
  }

  get gone(): boolean {
    return this.hungUp;
  }

  feed(e: AriEvent): void {
    this.events.push(e);
    if (e.type === 'ChannelStateChange' || e.type === 'StasisStart') this.state = e.channel.state;
    if (e.type === 'ChannelDtmfReceived') this.heard += e.digit;
    if (e.type === 'ChannelHangupRequest' && e.cause !== undefined) this.requestCause = e.cause;
    if (e.type === 'ChannelDestroyed') {
      this.cause = e.cause;
      this.hungUp = true;
    }
    if (e.type === 'StasisEnd') {
      // The half of a Local pair that entered through the dialplan gets no
      // ChannelDestroyed after it leaves Stasis: its hang-up request has the cause.
      setTimeout(() => {
        if (this.hungUp) return;
        this.cause = this.requestCause;
        this.hungUp = true;
        this.emit('change', e);
      }, 250);
    }
    this.emit('change', e);
  }

  /** Resolves when pred holds (checked now and on every event), or rejects naming what was awaited. */
  waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return;
        cleanup();
        resolve();
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`phone ${this.number} (${this.id}): timed out after ${timeoutMs} ms waiting for ${what}; state ${this.state}, events: ${this.events.map((x) => x.type).join(',')}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(t);
        this.off('change', check);
      };
      this.on('change', check);
    });
  }

  waitState(state: ChannelState, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.state === state, `state ${state}`, timeoutMs);
  }

  /** Resolves with the hang-up cause. */
  async waitHangup(timeoutMs = 5000): Promise<number | undefined> {
    await this.waitFor(() => this.hungUp && this.cause !== undefined, 'hang-up', timeoutMs);
    return this.cause;
  }

  waitHeard(digits: string, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.heard.includes(digits), `hearing DTMF ${digits}`, timeoutMs);
  }

  answer(): Promise<void> {
    return this.ari.answer(this.id);
  }

  ring(): Promise<void> {
    return this.ari.ring(this.id);
  }

  hangup(cause?: number): Promise<void> {
    return this.ari.hangup(this.id, cause);
  }

  /**
   * Presses keys: the digits reach konami as ChannelDtmfReceived on its half.
   * Resolves once the last key is released (ARI answers before it plays them).
   */
  async press(digits: string, between = 100, duration = 100): Promise<void> {
    await this.ari.sendDtmf(this.id, digits, { between, duration });
    await new Promise((r) => setTimeout(r, digits.length * (duration + between) + 50));
  }
}

/** Opens the phones' own ARI application. */
export async function phonesConnection(env: SandboxEnv, app: string): Promise<AriConnection> {
  const ari = new AriConnection({ ...env, app }, silentLogger());
  await ari.start();
  return ari;
}

export class SimulatedPhones {
  protected readonly phones = new Map<string, Phone>();
  protected readonly arrivals = new Map<string, Phone[]>();
  protected readonly arrivalWaiters = new Map<string, Array<(p: Phone) => void>>();
  protected readonly started = new Map<string, () => void>();
  private closing = false;

  constructor(readonly ari: AriConnection, readonly app: string) {
    ari.on('event', (e: AriEvent) => this.route(e));
  }

  /** Places a call from a new phone to `to` through konami. */
  async call(to: string, opts: CallOptions = {}): Promise<Phone> {
    const id = `phone-${randomUUID()}`;
    const peerId = `caller-${randomUUID()}`;
    const from = opts.from ?? { number: '1001', name: 'Alice' };
    const phone = new Phone(this.ari, id, to, 'Down', peerId);
    this.phones.set(id, phone);
    const inStasis = new Promise<void>((resolve) => this.started.set(id, resolve));
    await this.ari.createChannel({
      endpoint: `Local/${to}@konami-entry/n`,
      app: this.app,
      appArgs: 'caller',
      channelId: id,
      otherChannelId: peerId,
      // A phone's codec. Without it a Local channel runs at slin192, and a
      // hundred of them would keep Asterisk busy resampling.
      formats: 'ulaw',
      variables: {
        KONAMI_ACCOUNT: opts.account ?? '',
        KONAMI_DIAL: opts.dial ?? '',
        KONAMI_WAIT: String(opts.wait ?? 0),
        // Over a Local pair, this half's connected line is the other half's caller id.
        'CONNECTEDLINE(num)': from.number,
        'CONNECTEDLINE(name)': from.name ?? '',
      },
    });
    await inStasis;
    if (this.closing) {
      await phone.hangup().catch(() => undefined);
      throw new Error('the phones are closing');
    }
    await this.ari.dial(id, { timeout: 120 });
    return phone;
  }

  /** The next call that rings at `number` (already arrived or still to come). */
  incoming(number: string, timeoutMs = 5000): Promise<Phone> {
    const queued = this.arrivals.get(number);
    if (queued && queued.length > 0) return Promise.resolve(queued.shift()!);
    return new Promise((resolve, reject) => {
      const waiter = (p: Phone) => {
        clearTimeout(t);
        resolve(p);
      };
      const t = setTimeout(() => {
        const list = this.arrivalWaiters.get(number) ?? [];
        this.arrivalWaiters.set(number, list.filter((w) => w !== waiter));
        reject(new Error(`no call rang at ${number} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.arrivalWaiters.set(number, [...(this.arrivalWaiters.get(number) ?? []), waiter]);
    });
  }

  /** Calls that rang at `number` and were not taken with incoming(). */
  pending(number: string): number {
    return this.arrivals.get(number)?.length ?? 0;
  }

  private route(e: AriEvent): void {
    if (e.type === 'StasisStart' && !this.phones.has(e.channel.id)) {
      const number = e.args[0] ?? '';
      const phone = new Phone(this.ari, e.channel.id, number, e.channel.state);
      if (this.closing) {
        void phone.hangup().catch(() => undefined);
        return;
      }
      this.phones.set(phone.id, phone);
      phone.feed(e);
      const waiters = this.arrivalWaiters.get(number);
      const waiter = waiters?.shift();
      if (waiter) waiter(phone);
      else this.arrivals.set(number, [...(this.arrivals.get(number) ?? []), phone]);
      return;
    }
    const id = e.type === 'Dial' ? e.peer.id : 'channel' in e ? e.channel.id : undefined;
    if (!id) return;
    if (e.type === 'StasisStart') this.started.get(id)?.();
    this.phones.get(id)?.feed(e);
  }

  /** Hangs up every phone this application placed or was rung on and that is still up (taken or not). */
  async hangupAll(): Promise<void> {
    await Promise.all([...this.phones.values()].filter((p) => !p.gone).map((p) => p.hangup().catch(() => undefined)));
  }

  /** No more calls: every phone up hangs up, and so does any that arrives or is placed from now on. */
  async close(): Promise<void> {
    this.closing = true;
    await this.hangupAll();
  }

  async stop(): Promise<void> {
    await this.ari.stop();
  }
}
