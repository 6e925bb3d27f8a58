// Distributed mode: a request for a call this instance does not drive is put
// to the instances that drive the other Asterisk servers (their addresses
// come from the lease table, never from the request), with the client's own
// token, so each answers exactly as it would the client. A forwarded request
// is marked and never forwarded again.
import type { Context } from 'koa';
import type { ApiState } from './envelope.js';

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
 * Puts the request (its method, path, token and parsed body) to every other
 * instance at once; answers what each said (one that did not answer in time
 * is left out).
 */
export async function askPeers(ctx: Context, peers: Peers): Promise<PeerAnswer[]> {
  const state = ctx.state as ApiState;
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1', 'x-request-id': state.requestId };
  const token = ctx.get('x-auth-token');
  if (token) headers['x-auth-token'] = token;
  let body: string | undefined;
  if (state.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(state.body);
  }
  const answers = await Promise.all((await peers.addresses()).map(async (address): Promise<PeerAnswer | undefined> => {
    try {
      const res = await fetch(`${address}${ctx.originalUrl}`, { method: ctx.method, headers, body, signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS) });
      return { status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') ?? undefined };
    } catch (err) {
      state.log.warn({ peer: address, err: (err as Error).message }, 'another instance did not answer');
      return undefined;
    }
  }));
  return answers.filter((a): a is PeerAnswer => a !== undefined);
}

/**
 * Answers with what the instance that has the call said; false when none
 * has it (the caller answers 404, as for a call that exists nowhere).
 */
export async function forwardToOwner(ctx: Context, peers: Peers): Promise<boolean> {
  // The instance that has the call answers other than 404; one that is not ready may answer 503 to anything.
  const rank = (status: number) => (status < 300 ? 0 : status < 500 ? 1 : 2);
  const found = (await askPeers(ctx, peers)).filter((a) => a.status !== 404).sort((a, b) => rank(a.status) - rank(b.status))[0];
  if (!found) return false;
  ctx.status = found.status;
  ctx.body = found.body;
  if (found.retryAfter) ctx.set('Retry-After', found.retryAfter);
  return true;
}
