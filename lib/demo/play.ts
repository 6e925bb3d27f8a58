// `npm run demo`: the specification's scenario played on the sandbox by
// simulated phones while konami runs (`npm start` in another terminal), told
// as it happens. Every "Asterisk:" line is what Asterisk reports (a phone's
// channel state, who is in which of konami's bridges, music playing into the
// call's bridge), waited for before the next step; the demo ends with status 0
// only when every step happened as expected.
//
//   1. Alice (1001) calls Bob (1002), presses *21 2600; Mary answers; Alice hangs up.
//   2. The same transfer asked for through the REST API.
//   3. A transfer cancelled with *22 while Mary's phone rings.
//
// Settings: HTTP_HOST, HTTP_PORT and DATA_DIR as konami has them (or
// KONAMI_URL); KONAMI_SANDBOX_INSTANCE as for the sandbox; --pause <seconds>
// to wait at each state (default 2), so the web app's Calls page can be watched.
import { pathToFileURL } from 'node:url';
import { dialString } from '../stasis/dial.js';
import { DEMO_ROUTE, readDemoAccount } from './account.js';
import { signIn, webAddress } from './konami.js';
import { phonesConnection, SimulatedPhones, type Phone } from './phones.js';
import { sandboxEnv } from './sandbox.js';
import { only, poll, Scene } from './scene.js';

/** The ARI application the demo's phones answer on (the sandbox's sandbox-dial context hands numbers to it). */
export const DEMO_APP = 'konami-demo';

export interface DemoSettings {
  /** konami's address. */
  web: string;
  dataDir: string;
  /** How long each state is held for a person watching. */
  pauseMs: number;
  /** Writes one line of the story. */
  say: (line: string) => void;
  /** Timeout for each thing Asterisk should report. */
  stepMs?: number;
  /** Aborted (Ctrl-C): every phone the demo placed or answered hangs up. */
  stopped?: AbortSignal;
}

export class DemoFailed extends Error {}
export class DemoStopped extends Error {}

/**
 * Tells the story: a person's action, or what Asterisk reports, each with the
 * seconds since the start. Once stopped, it tells nothing more, and the next
 * action throws (nobody calls anyone after Ctrl-C).
 */
class Narrator {
  private readonly t0 = Date.now();
  constructor(private readonly say: (line: string) => void, private readonly stopped?: AbortSignal) {}

  private at(): string {
    return `${((Date.now() - this.t0) / 1000).toFixed(1).padStart(5)} s`;
  }

  title(text: string): void {
    this.say('');
    this.say(text);
  }

  act(text: string): void {
    if (this.stopped?.aborted) throw new DemoStopped('stopped');
    this.say(`${this.at()}  ${text}`);
  }

  saw(text: string): void {
    if (!this.stopped?.aborted) this.say(`${this.at()}    Asterisk: ${text}`);
  }
}

/** konami's own channel for a phone it dialled (the other half of the Local pair). */
const side = (p: Phone): string => p.id.replace(/;2$/, '');

interface Call {
  alice: Phone;
  bob: Phone;
  scene: Scene;
}

export async function playDemo(s: DemoSettings): Promise<void> {
  const story = new Narrator(s.say, s.stopped);
  const stepMs = s.stepMs ?? 10_000;
  const pause = () => new Promise((r) => setTimeout(r, s.pauseMs));
  const ready = await fetch(`${s.web}/readyz`).then((r) => r.ok, () => false);
  if (!ready) throw new DemoFailed(`konami does not answer at ${s.web}: start it first with \`npm start\` (in another terminal)`);
  const demo = await readDemoAccount(s.dataDir);
  if (!demo) throw new DemoFailed(`no demo account in ${s.dataDir}: \`npm start\` makes it when it runs on the sandbox`);
  const auth = await signIn(s.web, demo.apiKey);
  if ('status' in auth) throw new DemoFailed(`konami at ${s.web} refused the demo account's key (${auth.status}): is it the konami \`npm start\` runs on ${s.dataDir}?`);
  const { token } = auth;

  const phones = new SimulatedPhones(await phonesConnection(sandboxEnv(), DEMO_APP), DEMO_APP);
  s.stopped?.addEventListener('abort', () => void phones.close(), { once: true });
  const ringsAt = async (number: string, who: string): Promise<Phone> => {
    const phone = await phones.incoming(number, stepMs).catch(() => {
      throw new DemoFailed(`${number} (${who}) never rang here: is a softphone registered as ${number}? Its calls go there`);
    });
    await phone.ring();
    // konami's own channel to the phone, as Asterisk reports it.
    const channel = () => phones.ari.getChannel(side(phone)).then((c) => c.state, () => 'gone');
    await poll(channel, (state) => state === 'Ringing', `${number}'s line ringing`, (state) => `its state ${state}`, stepMs);
    return phone;
  };

  const aliceCallsBob = async (): Promise<Call> => {
    story.act('Alice (1001) calls 1002');
    // Into konami as the softphones' calls enter it: the demo account, through its sandbox route.
    const alice = await phones.call('1002', { account: demo.account, dial: dialString(DEMO_ROUTE.template, '1002'), from: { number: '1001', name: 'Alice' } });
    const scene = new Scene(phones.ari, alice.peerId!);
    scene.name(alice.peerId!, 'Alice');
    const bob = await ringsAt('1002', 'Bob');
    scene.name(side(bob), 'Bob');
    story.saw("1002 is ringing (Bob's phone)");
    await pause();
    story.act('Bob answers');
    await bob.answer();
    await alice.waitState('Up', stepMs);
    await scene.until((p) => only(p.main, 'Alice', 'Bob') && !p.music && p.consult.length === 0, 'Alice and Bob in the call\'s bridge', stepMs);
    story.saw('Alice and Bob talk');
    await pause();
    return { alice, bob, scene };
  };

  /** After a transfer to 2600 was asked for: Mary's phone rings, Bob holds with music, Alice waits in the consultation. */
  const maryRings = async (call: Call): Promise<Phone> => {
    const mary = await ringsAt('2600', 'Mary');
    call.scene.name(side(mary), 'Mary');
    story.saw("2600 is ringing (Mary's phone)");
    await call.scene.until((p) => only(p.main, 'Bob') && p.music, 'Bob alone in the call\'s bridge, with music on hold', stepMs);
    story.saw('Bob hears music on hold, alone in the call\'s bridge');
    await call.scene.until((p) => only(p.consult, 'Alice'), 'Alice in the consultation', stepMs);
    story.saw('Alice waits in the consultation while Mary\'s phone rings');
    await pause();
    return mary;
  };

  /** Mary answers and talks with Alice; Alice hangs up; Bob and Mary talk; Mary hangs up; nothing is left. */
  const completes = async (call: Call, mary: Phone): Promise<void> => {
    story.act('Mary answers');
    await mary.answer();
    await call.scene.until((p) => only(p.consult, 'Alice', 'Mary') && only(p.main, 'Bob') && p.music, 'Alice and Mary consulting, Bob holding', stepMs);
    story.saw('Alice and Mary talk; Bob still hears music');
    await pause();
    story.act('Alice hangs up');
    await call.alice.hangup();
    await call.scene.until((p) => only(p.main, 'Bob', 'Mary') && !p.music && p.consult.length === 0, 'Bob and Mary in the call\'s bridge', stepMs);
    story.saw('Bob and Mary talk; the music stopped');
    await pause();
    story.act('Mary hangs up');
    await mary.hangup();
    await ends(call);
  };

  const ends = async (call: Call): Promise<void> => {
    await call.bob.waitHangup(stepMs);
    await call.scene.until((p) => !p.bridged && p.consult.length === 0, 'no bridge left for the call', stepMs);
    story.saw('the call is over: every line hung up, no bridge left');
  };

  try {
    story.title(`1. Alice transfers Bob to Mary with *21 2600 (watch it on ${s.web}/, Calls)`);
    let call = await aliceCallsBob();
    story.act('Alice presses *21 2600 #');
    await call.alice.press('*212600#');
    await completes(call, await maryRings(call));

    story.title('2. The same transfer asked for through the REST API');
    call = await aliceCallsBob();
    const path = `/v1/accounts/${demo.account}/channels/${call.alice.peerId!}`;
    const res = await fetch(`${s.web}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': token },
      body: JSON.stringify({ data: { action: 'transfer', target: '2600' } }),
    });
    story.act(`POST ${path} {"data":{"action":"transfer","target":"2600"}} → ${res.status}`);
    if (res.status !== 202) throw new DemoFailed(`the API answered ${res.status}: ${await res.text()}`);
    await completes(call, await maryRings(call));

    story.title('3. Alice changes her mind: *22 cancels while Mary\'s phone rings');
    call = await aliceCallsBob();
    story.act('Alice presses *21 2600 #');
    await call.alice.press('*212600#');
    const mary = await maryRings(call);
    story.act('Alice presses *22');
    await call.alice.press('*22');
    await mary.waitHangup(stepMs);
    story.saw('Mary\'s phone stops ringing: her line is hung up');
    await call.scene.until((p) => only(p.main, 'Alice', 'Bob') && !p.music && p.consult.length === 0, 'Alice and Bob back in the call\'s bridge', stepMs);
    story.saw('Alice and Bob talk again; the music stopped');
    await pause();
    story.act('Alice hangs up');
    await call.alice.hangup();
    await ends(call);
    story.title('Every step happened as expected.');
  } finally {
    await phones.close();
    await phones.stop();
  }
}

function settingsFrom(env: NodeJS.ProcessEnv, argv: readonly string[]): DemoSettings {
  const i = argv.indexOf('--pause');
  const pause = i >= 0 ? Number(argv[i + 1]) : 2;
  if (!Number.isFinite(pause) || pause < 0 || pause > 60) throw new DemoFailed('--pause takes seconds, 0 to 60');
  const web = env['KONAMI_URL']?.replace(/\/+$/, '') || webAddress(env['HTTP_HOST'] || '127.0.0.1', Number(env['HTTP_PORT'] || 8000));
  return { web, dataDir: env['DATA_DIR']?.trim() || 'data', pauseMs: pause * 1000, say: (line) => void process.stdout.write(`${line}\n`) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const stop = new AbortController();
  const interrupted = () => {
    process.stderr.write('demo: stopping: every phone of the demo hangs up\n');
    stop.abort();
    // The phones are hung up at once; this only bounds a stuck request.
    setTimeout(() => process.exit(130), 5000).unref();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  Promise.resolve()
    .then(() => playDemo({ ...settingsFrom(process.env, process.argv.slice(2)), stopped: stop.signal }))
    .then(
      () => process.exit(0),
      (err: unknown) => {
        if (stop.signal.aborted) process.exit(130);
        process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
}
