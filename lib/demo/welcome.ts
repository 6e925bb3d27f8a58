// What `npm start` prints once konami answers on the sandbox: where the web
// app is, the demo account's key, the softphones to register, and the
// specification's scenario to try.
import type { MetaflowConfig } from '../metaflow/types.js';
import type { Softphone } from './sandbox.js';

export interface Welcome {
  web: string;
  account: string;
  /** Undefined: not to be printed here (only where it is kept is). */
  apiKey: string | undefined;
  /** Where the key is kept (DATA_DIR/demo-account). */
  keptIn: string;
  /** The phones' passwords are printed (else the command that prints them is). */
  passwords: boolean;
  metaflows: MetaflowConfig | null | undefined;
  sip: { address: string; phones: readonly Softphone[] };
}

/** The account's codes as a person presses them: "*22 resume", "*21 + number transfer". */
export function codesOf(metaflows: MetaflowConfig | null | undefined): string[] {
  if (!metaflows) return [];
  const bind = metaflows.binding_digit;
  const numbers = Object.entries(metaflows.numbers).map(([code, a]) => `${bind}${code} ${a.module}`);
  const patterns = Object.entries(metaflows.patterns).map(([pattern, a]) => {
    const prefix = /^\^?([0-9*]+)\(\\d\+\)\$?$/.exec(pattern)?.[1];
    return prefix !== undefined ? `${bind}${prefix} + number ${a.module}` : `${bind}/${pattern}/ ${a.module}`;
  });
  return [...patterns, ...numbers];
}

export function welcomeText(w: Welcome): string {
  const codes = codesOf(w.metaflows);
  const width = Math.max(...w.sip.phones.map((p) => p.name.length));
  const phone = (n: string) => w.sip.phones.find((p) => p.number === n);
  const [alice, bob, mary] = [phone('1001'), phone('1002'), phone('2600')];
  const who = (p: Softphone | undefined, n: string) => (p ? `${n} (${p.name})` : n);
  return [
    '',
    'konami is running on the sandbox Asterisk.',
    '',
    `  Web app    ${w.web}   sign in with the account's API key`,
    `  Account    Demo ${w.account}   ${codes.length > 0 ? codes.join(', ') : 'no feature codes'}`,
    w.apiKey !== undefined ? `  API key    ${w.apiKey}   (kept in ${w.keptIn})` : `  API key    in ${w.keptIn}`,
    '',
    `  SIP phones: register a softphone on this machine at ${w.sip.address} (UDP), user = number`,
    ...w.sip.phones.map((p) => `    ${p.number}  ${p.name.padEnd(width)}  ${w.passwords ? `password ${p.password}` : 'password: npm run sandbox -- phones'}`),
    '',
    '  Try it:',
    `    1. Call 1002 from ${who(alice, '1001')}; answer on ${who(bob, '1002')}.`,
    `    2. On 1001 press *21 2600 (then # or wait): 1002 hears music, ${who(mary, '2600')} rings; answer it.`,
    '    3. Hang up 1001: 1002 and 2600 talk.',
    '  Only the demo account reaches these phones; every account reaches 600 (echo),',
    '  601 (busy), 602 (congestion) and 603 (rings for ever).',
    '  No softphone? In another terminal, `npm run demo` plays it with simulated phones',
    '  (watch the Calls page meanwhile). Ctrl-C here stops konami.',
    '',
  ].join('\n');
}
