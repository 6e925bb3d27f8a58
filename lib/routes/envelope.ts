// The crossbar envelope around every answer, request ids, JSON bodies with a
// size limit, and errors: a bad request never becomes a 5xx.
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../log.js';
import { UnknownAccountError } from '../store/accounts.js';
import type { AuthState } from './tokens.js';
import { ApiError, notFound } from './errors.js';

export const MAX_BODY_BYTES = 64 * 1024;
/** Arrays and objects nested deeper than this are refused before they are parsed. */
export const MAX_BODY_DEPTH = 16;

export interface ApiState {
  requestId: string;
  log: Logger;
  body?: unknown;
  /** The request's token, as identify() found it (undefined: none given). */
  auth?: AuthState;
  accountId?: string;
  /** A user's token: the user it speaks for. */
  userId?: string;
}

/** Sets the success envelope. */
export function reply(ctx: Context, data: unknown, status = 200, extra: Record<string, unknown> = {}): void {
  ctx.status = status;
  ctx.body = { data, status: 'success', request_id: (ctx.state as ApiState).requestId, ...extra };
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/**
 * On every answer: nothing is sniffed into another type, and a page of
 * konami's runs only konami's own script and style, talks only to konami, and
 * is never framed.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

/** Outermost middleware: request id, per-request logger, error envelope, access log. */
export function envelope(log: Logger, onResponse?: (route: string, status: number) => void) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const state = ctx.state as ApiState;
    state.requestId = requestId;
    // The request's own logger is made when a handler first logs (most never do).
    let child: Logger | undefined;
    Object.defineProperty(state, 'log', { get: () => (child ??= log.child({ request_id: requestId })), enumerable: true, configurable: true });
    ctx.set('X-Request-ID', requestId);
    ctx.set(SECURITY_HEADERS);
    const started = process.hrtime.bigint();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new ApiError(404, 'not found', { path: { not_found: { message: `no route for ${ctx.method} ${ctx.path}` } } });
      if (ctx.status === 405 && (ctx.body === undefined || typeof ctx.body === 'string')) throw new ApiError(405, 'method not allowed');
    } catch (err) {
      // An account removed while its request ran is an account that does not exist.
      const e = err instanceof ApiError ? err : err instanceof UnknownAccountError ? notFound() : undefined;
      if (!e) state.log.error({ err }, 'request failed');
      const status = e?.status ?? 500;
      ctx.status = status;
      for (const [k, v] of Object.entries(e?.headers ?? {})) ctx.set(k, v);
      ctx.body = {
        status: 'error',
        error: String(status),
        message: e?.message ?? 'internal error',
        data: e?.data ?? {},
        request_id: requestId,
      };
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      log.info({ request_id: requestId, method: ctx.method, route, status: ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
      onResponse?.(String(route), ctx.status);
    }
  };
}

/** Parses a JSON body for methods that carry one: 415 when it is not JSON, 413 when too large, 400 when malformed. */
export async function jsonBody(ctx: Context, next: Next): Promise<void> {
  if (!['POST', 'PUT', 'PATCH'].includes(ctx.method)) return next();
  const length = Number(ctx.get('content-length') || 0);
  if (length > MAX_BODY_BYTES) throw new ApiError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return next();
  if (!ctx.is('application/json')) {
    throw new ApiError(415, 'the body must be JSON (Content-Type: application/json)', {
      'content-type': { enum: { message: 'must be application/json' } },
    });
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (nestingDepth(text) > MAX_BODY_DEPTH) {
    throw new ApiError(400, 'invalid data', { body: { depth: { message: `nests arrays and objects deeper than ${MAX_BODY_DEPTH} levels` } } });
  }
  try {
    (ctx.state as ApiState).body = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'invalid data', { body: { type: { message: `is not valid JSON: ${(err as Error).message}` } } });
  }
  return next();
}

/** How deep arrays and objects nest in a JSON text (strings skipped); no parse, no recursion. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}
