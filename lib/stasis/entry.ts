// The call entry: what the dialplan passes with Stasis(konami,account=...,dial=...).

export interface EntryArgs {
  account: string | undefined;
  /** An explicit dial string, or undefined to apply the dial template. */
  dial: string | undefined;
  /** Arguments konami did not understand (logged, never fatal). */
  unknown: string[];
}

const ACCOUNT = /^[A-Za-z0-9_.-]{1,64}$/;

export function parseEntryArgs(args: readonly string[]): EntryArgs {
  const out: EntryArgs = { account: undefined, dial: undefined, unknown: [] };
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1).trim();
    if (key === 'account') out.account = value === '' ? undefined : value;
    else if (key === 'dial') out.dial = value === '' ? undefined : value;
    else if (arg !== '') out.unknown.push(arg);
  }
  if (out.account !== undefined && !ACCOUNT.test(out.account)) {
    out.unknown.push(`account=${out.account}`);
    out.account = undefined;
  }
  return out;
}

/** Applies a template such as "PJSIP/{exten}" to the dialled extension. */
export function applyDialTemplate(template: string, exten: string): string {
  return template.split('{exten}').join(exten);
}

/** Marks a channel konami created itself, so its StasisStart is never taken for a new call. */
export function isOwnLeg(args: readonly string[]): boolean {
  return args.some((a) => a.startsWith('leg='));
}
