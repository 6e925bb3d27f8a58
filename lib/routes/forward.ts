// Distributed mode: a request for a call this instance does not drive is put
// to the instances that drive the other Asterisk servers (their addresses
// come from the lease table, never from the request), with the client's own
// token, so each answers exactly as it would the client. A forwarded request
// is marked and never forwarded again.
import type { Context } from 'koa';
import type { ApiState } from './envelope.js';
import { ApiError } from './errors.js';

/** Marks a request one instance put to another (it is answered from that instance's own calls only). */
export const FORWARDED_HEADER = 'x-konami-forwarded';
/** How long an instance may take to answer another. */
export const FORWARD_TIMEOUT_MS = 2000;

export interface Peers {
  /** Where the API of every other instance driving an Asterisk server answers now. */
  addresses(): Promise<string[]>;
}

export interface PeerAnswer {
  status: number;
  body: unknown;
  retryAfter?: string;
}

/** Whether this request may be put to the other instances (it did not come from one). */
export function mayForward(ctx: Context, peers: Peers | undefined): peers is Peers {
  return peers !== undefined && ctx.get(FORWARDED_HEADER) === '';
}

/**
 * The peer's own address with the request's path and query, read as a path:
 * a request line in absolute form never chooses the host.
 */
function peerUrl(address: string, ctx: Context): URL {
  const target = new URL(address);
  target.pathname = ctx.path;
  target.search = ctx.querystring;
  return target;
}

/** What the other instances said; `failed`: some did not answer (or could not be found), so the answers may be incomplete. */
export interface PeerAnswers {
  answers: PeerAnswer[];
  failed: boolean;
}

/**
 * Puts the request (its method, path, query, token and parsed body) to every
 * other instance at once. The address is the peer's; the path and query are
 * the request's, re-read as a path (a request line in absolute form, say,
 * never names the host). Nothing of the URL is logged: the query may hold a
 * token.
 */
export async function askPeers(ctx: Context, peers: Peers): Promise<PeerAnswers> {
  const state = ctx.state as ApiState;
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1', 'x-request-id': state.requestId };
  const token = ctx.get('x-auth-token');
  if (token) headers['x-auth-token'] = token;
  let body: string | undefined;
  if (state.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(state.body);
  }
  let addresses: string[];
  try {
    addresses = await peers.addresses();
  } catch (err) {
    state.log.warn({ err: (err as Error).message }, 'the other instances could not be found');
    return { answers: [], failed: true };
  }
  let failed = false;
  const answers = await Promise.all(addresses.map(async (address): Promise<PeerAnswer | undefined> => {
    try {
      const res = await fetch(peerUrl(address, ctx), { method: ctx.method, headers, body, redirect: 'error', signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS) });
      return { status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') ?? undefined };
    } catch (err) {
      failed = true;
      state.log.warn({ peer: address, err: (err as Error).name }, 'another instance did not answer');
      return undefined;
    }
  }));
  return { answers: answers.filter((a): a is PeerAnswer => a !== undefined), failed };
}

/** Not every instance answered: whether the call exists elsewhere is not known (the same answer whatever the call). */
export function peersUnavailable(): ApiError {
  return new ApiError(503, 'not every konami instance answered; try again shortly', {}, { 'Retry-After': '2' });
}

/**
 * Answers with what the instance that has the call said; false when none
 * has it (the caller answers 404, as for a call that exists nowhere). When
 * some instance did not answer and none had the call, 503: a 404 then might
 * be wrong (and a client might retry an action the silent one carried out).
 */
export async function forwardToOwner(ctx: Context, peers: Peers): Promise<boolean> {
  const { answers, failed } = await askPeers(ctx, peers);
  // The instance that has the call answers other than 404; one that is not ready may answer 503 to anything.
  const rank = (status: number) => (status < 300 ? 0 : status < 500 ? 1 : 2);
  const found = answers.filter((a) => a.status !== 404).sort((a, b) => rank(a.status) - rank(b.status))[0];
  if (!found) {
    if (failed) throw peersUnavailable();
    return false;
  }
  ctx.status = found.status;
  ctx.body = found.body;
  if (found.retryAfter) ctx.set('Retry-After', found.retryAfter);
  return true;
}

/** How often an event stream looks for instances it does not hear yet (one that took over a server, say). */
export const RELAY_CHECK_MS = 1000;
/** A peer's stream that sends nothing this long (its heartbeat is 15 s) is taken for lost and opened again. */
export const RELAY_IDLE_MS = 40_000;
/** One event larger than this from a peer ends the relay (nothing konami sends comes near it). */
const RELAY_MAX_EVENT_BYTES = 64 * 1024;
/** A peer whose stream failed is tried again after this, doubling up to RELAY_RETRY_MAX_MS. */
const RELAY_RETRY_MS = 1000;
const RELAY_RETRY_MAX_MS = 30_000;
/** How long a new stream waits for the other instances' streams to be open before it answers. */
export const RELAY_READY_MS = 2000;

export interface Relays {
  /** Every instance known now answered (or failed, or RELAY_READY_MS passed): from here on no event of theirs is missed. */
  ready: Promise<void>;
  /** Stops every relay (the client left). */
  stop(): void;
}

/**
 * Distributed mode's event streams: the same stream (path, query, token) is
 * opened on every other instance, and each event it sends is passed to
 * `onEvent` (name and data lines, as sent), so a client hears the calls of
 * every Asterisk whichever instance it reached. Instances that appear later
 * (a takeover) are joined within RELAY_CHECK_MS; a relay that ends is
 * opened again, sooner after a stream that worked than after a refusal.
 * A client told its stream is open reads the calls' list next (the stream
 * has no history), so the stream answers once `ready`: an event sent between
 * the two would otherwise reach nobody.
 */
export function relayPeerStreams(ctx: Context, peers: Peers, onEvent: (name: string, data: string[]) => void): Relays {
  const state = ctx.state as ApiState;
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1', 'x-request-id': state.requestId, accept: 'text/event-stream' };
  const token = ctx.get('x-auth-token');
  if (token) headers['x-auth-token'] = token;
  const open = new Map<string, AbortController>();
  const failures = new Map<string, { count: number; retryAt: number }>();
  let stopped = false;
  /** Resolves once the peer's stream is open, or failed. */
  const join = (address: string): Promise<void> => {
    const controller = new AbortController();
    open.set(address, controller);
    let answered: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (answered = resolve));
    let idle: NodeJS.Timeout | undefined;
    const awake = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), RELAY_IDLE_MS);
      idle.unref();
    };
    void (async () => {
      let heard = false;
      try {
        awake();
        const res = await fetch(peerUrl(address, ctx), { headers, redirect: 'error', signal: controller.signal });
        if (!res.ok || !res.body) throw new Error(`answered ${res.status}`);
        heard = true;
        answered();
        failures.delete(address);
        const decoder = new TextDecoder();
        let buffer = '';
        for await (const chunk of res.body) {
          awake();
          buffer += decoder.decode(chunk as Uint8Array, { stream: true }).replace(/\r\n?/g, '\n');
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const lines = buffer.slice(0, end).split('\n');
            buffer = buffer.slice(end + 2);
            const name = lines.find((l) => l.startsWith('event: '))?.slice(7);
            const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
            if (name && /^[A-Z_]{1,64}$/.test(name) && data.length > 0) onEvent(name, data);
          }
          if (buffer.length > RELAY_MAX_EVENT_BYTES) throw new Error('an event too large');
        }
      } catch (err) {
        if (!stopped) state.log.warn({ peer: address, err: (err as Error).name }, "another instance's event stream ended");
      } finally {
        answered();
        clearTimeout(idle);
        if (open.get(address) === controller) open.delete(address);
        if (!heard) {
          const count = (failures.get(address)?.count ?? 0) + 1;
          failures.set(address, { count, retryAt: Date.now() + Math.min(RELAY_RETRY_MAX_MS, RELAY_RETRY_MS * 2 ** (count - 1)) });
        }
      }
    })();
    return opened;
  };
  const check = async () => {
    const addresses = await peers.addresses().catch(() => [] as string[]);
    if (stopped) return;
    const now = Date.now();
    const joined: Array<Promise<void>> = [];
    for (const address of addresses) if (!open.has(address) && (failures.get(address)?.retryAt ?? 0) <= now) joined.push(join(address));
    await Promise.all(joined);
  };
  const first = check();
  const timer = setInterval(() => void check(), RELAY_CHECK_MS);
  timer.unref();
  const ready = new Promise<void>((resolve) => {
    const late = setTimeout(resolve, RELAY_READY_MS);
    late.unref();
    void first.then(() => {
      clearTimeout(late);
      resolve();
    });
  });
  return {
    ready,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      for (const c of open.values()) c.abort();
      open.clear();
    },
  };
}
