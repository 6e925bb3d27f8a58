// Server-sent events: GET /v1/accounts/{ACCOUNT_ID}/events (the account's
// calls) and /users/{USER_ID}/events (one user's), instead of polling. Each
// event is named as Kazoo names channel events (CHANNEL_CREATE,
// CHANNEL_ANSWER, CHANNEL_BRIDGE, CHANNEL_TRANSFEROR, CHANNEL_TRANSFEREE,
// CHANNEL_DESTROY) and carries the channel as GET .../channels shows it. A
// browser's EventSource cannot set headers: the token may come as
// ?auth_token=. The stream ends when the token expires or is revoked, and for
// a client that stops reading. In distributed mode the stream carries the
// calls of every instance: it is opened on each of the others too, and
// their events are passed on.
import { PassThrough } from 'node:stream';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { CallEvents } from '../stasis/call-events.js';
import type { AccountStore } from '../store/accounts.js';
import { stillValid } from './auth.js';
import type { ApiState } from './envelope.js';
import { ApiError, notFound } from './errors.js';
import { mayForward, relayPeerStreams, type Peers } from './forward.js';
import { scopeOf } from './scope.js';

/** Streams an account's own token(s) may hold open at once... */
export const MAX_STREAMS_PER_ACCOUNT = 20;
/** ...and its users, all together, and each. */
export const MAX_STREAMS_OF_USERS = 20;
export const MAX_STREAMS_PER_USER = 3;
/** A client this far behind (bytes not yet taken) is dropped: it reconnects and reads the list again. */
const MAX_UNREAD_BYTES = 1 << 20;

/** Which limit a new stream would pass, or why not. */
function overLimit(events: CallEvents, account: string, user: string | undefined): string | undefined {
  if (user === undefined) return events.count(account) >= MAX_STREAMS_PER_ACCOUNT ? `at most ${MAX_STREAMS_PER_ACCOUNT} for the account at once` : undefined;
  if (events.count(account, user) >= MAX_STREAMS_PER_USER) return `at most ${MAX_STREAMS_PER_USER} per user at once`;
  return events.count(account, '*') >= MAX_STREAMS_OF_USERS ? `at most ${MAX_STREAMS_OF_USERS} for the account's users at once` : undefined;
}

export function eventRoutes(events: CallEvents, accounts: Pick<AccountStore, 'cached'>, heartbeatMs = 15_000, peers?: Peers): Router {
  const router = new Router();
  for (const path of ['/events', '/users/:userId/events']) {
    router.get(path, async (ctx: Context) => {
      const state = ctx.state as ApiState;
      if (!scopeOf(ctx, accounts)) throw notFound();
      const account = state.accountId!;
      const over = overLimit(events, account, state.userId);
      if (over) throw new ApiError(429, 'too many event streams are open', { events: { maximum: { message: over } } }, { 'Retry-After': '10' });
      const claims = state.auth!.ok ? state.auth!.claims : undefined;
      const live = () => claims !== undefined && claims.exp > Date.now() / 1000 && stillValid(accounts.cached(account), claims);

      const stream = new PassThrough();
      let n = 0;
      let ended = false;
      /** Ends the stream: the client reads what is left (`drop`: the connection is cut, nothing more is kept for it). */
      const end = (drop = false) => {
        if (!ended) {
          ended = true;
          clearInterval(beat);
          unsubscribe();
          relays.stop();
          stream.end();
        }
        if (drop) ctx.req.socket.destroy();
      };
      const write = (text: string) => {
        if (ended) return;
        if (stream.writableLength > MAX_UNREAD_BYTES) end(true);
        else stream.write(text);
      };
      const unsubscribe = events.subscribe({
        account,
        user: state.userId,
        scope: () => (live() ? scopeOf(ctx, accounts) : undefined),
        send: (e) => write(`id: ${++n}\nevent: ${e.event_name}\ndata: ${JSON.stringify(e)}\n\n`),
        close: () => end(true),
      });
      // Distributed mode: the calls the other instances drive, heard through the same stream opened on each.
      const relays = mayForward(ctx, peers)
        ? relayPeerStreams(ctx, peers, (name, data) => write(`id: ${++n}\nevent: ${name}\n${data.map((line) => `data: ${line}\n`).join('')}\n`))
        : { ready: Promise.resolve(), stop: () => undefined };
      const beat = setInterval(() => (live() && scopeOf(ctx, accounts) ? write(': keep-alive\n\n') : end()), heartbeatMs);
      beat.unref();
      ctx.req.on('close', () => end());
      stream.on('close', () => end());
      // Told it is listening only once the other instances' streams are open too (events meanwhile wait in `stream`).
      await relays.ready;

      ctx.status = 200;
      ctx.type = 'text/event-stream';
      ctx.set({ 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
      ctx.body = stream;
      // Opened at once, so the client knows it is listening; a lost client tries again after 2 s.
      write('retry: 2000\n: listening\n\n');
      state.log.info({ account, user: state.userId }, 'event stream opened');
    });
  }
  return router;
}
