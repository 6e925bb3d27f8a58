// The CPU floor of bench:transfer part (c): a bare ARI application, run as
// its own process on the same transport as konami (its event websocket and
// REST client), doing only what one attended transfer must make Asterisk do,
// and nothing a service needs around it (no accounts, metaflows, journal,
// logging, limits, timers, recovery, failure handling). What konami spends
// per call beyond this is konami's own.
//
// Per call: the caller enters Stasis (args account=...), the called number is
// made and dialled, both are answered and bridged; *21<target># holds the
// called party with music in the main bridge, moves the caller into a
// consultation bridge and makes and dials the target; the target answers into
// it; the caller hangs up, the music stops, the target joins the main bridge,
// the consultation bridge goes; the first of the two left to hang up ends the
// call. Bridges are named as konami names them, so the benchmark's checks
// are the same for both.
//
//   started by bench/transfer.ts; prints "ready" once registered.
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../lib/log.js';
import type { AriEvent } from '../lib/stasis/ari-types.js';
import { AriConnection } from '../lib/stasis/connection.js';

const env = process.env;
const app = 'konami';
const template = env['DIAL_TEMPLATE'] ?? 'Local/{exten}@phones/n';
const ari = new AriConnection({ url: env['ARI_URL']!, username: env['ARI_USERNAME']!, password: env['ARI_PASSWORD']!, app }, silentLogger());

interface Call {
  alice: string;
  bob: string;
  mary?: string;
  main: string;
  consult?: string;
  /** Settles once the main bridge exists; the consultation bridge once it exists with the caller in it. */
  mainMade: Promise<unknown>;
  consultMade?: Promise<unknown>;
  digits?: string;
  gone: Set<string>;
  ended: boolean;
}
const byChannel = new Map<string, Call>();
const ignore = () => undefined;

function end(call: Call): void {
  if (call.ended) return;
  call.ended = true;
  for (const id of [call.alice, call.bob, call.mary]) if (id && !call.gone.has(id)) void ari.hangup(id).catch(ignore);
  void ari.destroyBridge(call.main).catch(ignore);
  if (call.consult) void ari.destroyBridge(call.consult).catch(ignore);
}

function onDigit(call: Call, digit: string): void {
  if (call.digits === undefined) {
    if (digit === '*') call.digits = '';
    return;
  }
  if (digit !== '#') {
    call.digits += digit;
    return;
  }
  const m = /^21(\d+)$/.exec(call.digits);
  call.digits = undefined;
  if (!m || call.mary) return;
  const mary = randomUUID();
  const consult = randomUUID();
  call.mary = mary;
  call.consult = consult;
  byChannel.set(mary, call);
  call.consultMade = (async () => {
    await ari.createBridge({ bridgeId: consult, type: 'mixing', name: `konami/${call.alice}/consult` });
    await Promise.all([ari.addChannel(consult, [call.alice]), ari.startBridgeMoh(call.main)]);
  })().catch(ignore);
  void ari.createChannel({ endpoint: template.replace('{exten}', m[1]!), app, appArgs: 'leg=target', channelId: mary }).catch(ignore);
}

ari.on('event', (e: AriEvent) => {
  switch (e.type) {
    case 'StasisStart': {
      const call = byChannel.get(e.channel.id);
      if (call) {
        void ari.dial(e.channel.id, {}).catch(ignore);
        return;
      }
      if (!e.args.some((a) => a.startsWith('account='))) return;
      const main = randomUUID();
      const mainMade = ari.createBridge({ bridgeId: main, type: 'mixing', name: `konami/${e.channel.id}` }).catch(ignore);
      const c: Call = { alice: e.channel.id, bob: randomUUID(), main, mainMade, gone: new Set(), ended: false };
      byChannel.set(c.alice, c);
      byChannel.set(c.bob, c);
      void ari.createChannel({ endpoint: template.replace('{exten}', e.channel.dialplan.exten), app, appArgs: 'leg=b', channelId: c.bob }).catch(ignore);
      return;
    }
    case 'ChannelStateChange': {
      const call = byChannel.get(e.channel.id);
      if (!call || e.channel.state !== 'Up') return;
      if (e.channel.id === call.bob) {
        void Promise.all([ari.answer(call.alice), call.mainMade]).then(() => ari.addChannel(call.main, [call.alice, call.bob])).catch(ignore);
      } else if (e.channel.id === call.mary && call.consult) {
        const consult = call.consult;
        void call.consultMade!.then(() => ari.addChannel(consult, [call.mary!])).catch(ignore);
      }
      return;
    }
    case 'ChannelDtmfReceived': {
      const call = byChannel.get(e.channel.id);
      if (call && e.channel.id === call.alice) onDigit(call, e.digit);
      return;
    }
    case 'StasisEnd': {
      const call = byChannel.get(e.channel.id);
      if (!call) return;
      byChannel.delete(e.channel.id);
      call.gone.add(e.channel.id);
      if (e.channel.id === call.alice && call.mary && !call.ended) {
        const { mary, consult, main } = call;
        void Promise.all([ari.stopBridgeMoh(main), ari.addChannel(main, [mary])])
          .then(() => ari.destroyBridge(consult!)).catch(ignore);
        call.consult = undefined;
        return;
      }
      end(call);
      return;
    }
    default:
  }
});

await ari.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void ari.stop().then(() => process.exit(0));
});
