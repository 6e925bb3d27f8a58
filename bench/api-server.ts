// The servers bench/api.ts measures: konami's API (real store, token signer,
// rate limiter, validation; a call service with two answered calls) and a
// bare Koa handler. Tells the parent its ports and a token, then serves.
// konami's modules come from the build (dist/), as production runs them (the
// sources through tsx carry its own helpers into every closure); their types
// from the sources.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import type { CallService } from '../lib/routes/channels.js';
import type { ChannelView } from '../lib/stasis/control.js';
import { fixedRoutes } from '../test/fakes/dial-routes.js';

const build = '../dist/lib/';
const fromBuild = async <T>(path: string): Promise<T> => (await import(`${build}${path}`)) as T;
const { silentLogger } = await fromBuild<typeof import('../lib/log.js')>('log.js');
const { createApi } = await fromBuild<typeof import('../lib/routes/api.js')>('routes/api.js');
const { RateLimiter } = await fromBuild<typeof import('../lib/limits.js')>('limits.js');
const { startHttp } = await fromBuild<typeof import('../lib/routes/server.js')>('routes/server.js');
const { TokenSigner } = await fromBuild<typeof import('../lib/routes/tokens.js')>('routes/tokens.js');
const { builtInModules } = await fromBuild<typeof import('../lib/stasis/modules/index.js')>('stasis/modules/index.js');
const { FileAccountStore } = await fromBuild<typeof import('../lib/store/file-store.js')>('store/file-store.js');
const { UserKeys } = await fromBuild<typeof import('../lib/store/users.js')>('store/users.js');
const { CallEvents } = await fromBuild<typeof import('../lib/stasis/call-events.js')>('stasis/call-events.js');

const view = (id: string, other: string, direction: 'inbound' | 'outbound'): ChannelView => ({
  id, uuid: id, call_id: id, other_leg: other, direction, caller_id: { name: 'Alice', number: '1001' },
  callee_id: { name: '', number: '2001' }, destination: '2001', state: 'answered', answered: true,
  created_at: new Date().toISOString(), timestamp: 63_900_000_000, answered_at: new Date().toISOString(), transfer: null, last_transfer: null,
});

const store = await FileAccountStore.open(mkdtempSync(join(tmpdir(), 'konami-bench-api-')));
const { account } = await store.create('bench');
const channels = [view('alice-1', 'bob-1', 'inbound'), view('bob-1', 'alice-1', 'outbound')];
const calls: CallService = {
  list: (scope) => (scope.account === account.id ? channels : []),
  get: (scope, id) => channels.find((c) => scope.account === account.id && c.id === id),
  transfer: async () => ({ ok: false, error: 'not_found' }),
  cancel: async () => ({ ok: false, error: 'not_found' }),
  hangup: async () => ({ ok: false, error: 'not_found' }),
  break: async () => ({ ok: false, error: 'not_found' }),
};
const secret = randomBytes(32);
const tokens = new TokenSigner(secret, 3600);
const api = createApi({
  store, modules: builtInModules(), calls, tokens, userKeys: new UserKeys(secret),
  events: new CallEvents({ watch: () => () => undefined }),
  dialRoutes: fixedRoutes({ default: 'PJSIP/{target}' }),
      limiter: new RateLimiter(1e9, 1e9),
  readiness: { checks: () => ({ ari: true, store: true }) },
  log: silentLogger(),
});
const server = await startHttp({ host: '127.0.0.1', port: 0 }, api.app, silentLogger());
const bareApp = new Koa();
bareApp.use((ctx) => {
  ctx.body = { data: channels, status: 'success' };
});
const bare = await startHttp({ host: '127.0.0.1', port: 0 }, bareApp, silentLogger());
process.send!({ api: server.port, bare: bare.port, token: tokens.issue(account.id, account.api_keys[0]!.id).token, account: account.id });
// Ends by exit (not by the signal's default), so that a CPU profile asked for (BENCH_CPU_PROF) is written.
process.on('SIGTERM', () => process.exit(0));
