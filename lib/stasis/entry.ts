// The call entry: what the dialplan passes with Stasis(konami,account=...,dial=...).
// Arguments may carry what a caller chose (a header, a dialled string): one
// given twice, or a dial string that is not one, refuses the call rather than
// letting the last word win.

export interface EntryArgs {
  account: string | undefined;
  /** An explicit dial string, or undefined to dial the extension through the default route. */
  dial: string | undefined;
  /** Arguments konami did not understand (logged, never fatal). */
  unknown: string[];
  /** Why the arguments cannot be trusted (an argument given twice, a malformed dial string): the call is refused. */
  refused: string[];
}

const ACCOUNT = /^[A-Za-z0-9_.-]{1,64}$/;
/** A dial string: a technology, "/", and no space. */
const DIAL = /^[A-Za-z0-9_]+\/\S{1,250}$/;

export function parseEntryArgs(args: readonly string[]): EntryArgs {
  const out: EntryArgs = { account: undefined, dial: undefined, unknown: [], refused: [] };
  const seen = new Set<string>();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1).trim();
    if (key === 'account' || key === 'dial') {
      if (seen.has(key)) out.refused.push(`${key}= given more than once`);
      seen.add(key);
      if (key === 'account') out.account = value === '' ? undefined : value;
      else out.dial = value === '' ? undefined : value;
    } else if (arg !== '') out.unknown.push(arg);
  }
  if (out.account !== undefined && !ACCOUNT.test(out.account)) {
    out.unknown.push(`account=${out.account}`);
    out.account = undefined;
  }
  if (out.dial !== undefined && !DIAL.test(out.dial)) out.refused.push('dial= is not a dial string');
  return out;
}

const OWN_KINDS = new Set(['leg=b', 'leg=target', 'leg=recall']);

/** Marks a channel konami created itself (leg=<kind>,call=<id>), so its StasisStart is never taken for a new call. */
export function isOwnLeg(args: readonly string[]): boolean {
  return OWN_KINDS.has(args[0] ?? '') && (args[1] ?? '').startsWith('call=');
}
