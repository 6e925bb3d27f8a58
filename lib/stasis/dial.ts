// What konami may dial, in one place. A number (a transfer target, the
// extension a caller dialled, a transferor called back) is only ever digits;
// how it is reached is the operator's decision: a dial route is a named
// template the operator defines (DIAL_TEMPLATE is the route "default";
// DIAL_ROUTES and `konami route set` add others) and allows per account. An
// account picks among its routes; it never writes a dial string.

/**
 * A number konami dials: digits only (an optional leading +). No letter and
 * no separator, so it cannot change the dial string; no * or #, so it cannot
 * reach the operator's own feature codes (pickup, voicemail) through a route.
 */
export const NUMBER = /^\+?[0-9]{1,32}$/;
export const NUMBER_RULE = 'must be 1 to 32 digits, with an optional leading +';

export function isDialable(number: string): boolean {
  return NUMBER.test(number);
}

/** The route every account may use unless the operator says otherwise: DIAL_TEMPLATE. */
export const DEFAULT_ROUTE = 'default';
export const ROUTE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const ROUTE_NAME_RULE = 'must be 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit';
const PLACEHOLDER = '{target}';

/** Why a route template cannot be used, or undefined when it can. */
export function templateProblem(template: string): string | undefined {
  if (template.length > 256) return 'must be at most 256 characters';
  if (!/^[A-Za-z0-9_]+\/\S+$/.test(template)) return 'must be a dial string such as PJSIP/{target} or PJSIP/{target}@trunk, without spaces';
  if (template.split(PLACEHOLDER).length !== 2) return `must contain ${PLACEHOLDER} exactly once`;
  if (template.includes(',')) return 'must not contain a comma';
  return undefined;
}

/** The dial string for a number through a route's template; undefined when the number may not be dialled. */
export function dialString(template: string, number: string): string | undefined {
  return isDialable(number) ? template.replace(PLACEHOLDER, number) : undefined;
}

/**
 * Parses DIAL_ROUTES: `name=template` pairs separated by `;`, e.g.
 * `pstn=PJSIP/{target}@trunk;lab=Local/{target}@lab/n`. Throws with every
 * problem named.
 */
export function parseRoutes(text: string): Map<string, string> {
  const routes = new Map<string, string>();
  const problems: string[] = [];
  for (const part of text.split(';').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq).trim();
    const template = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!ROUTE_NAME.test(name)) problems.push(`route ${JSON.stringify(name)}: the name ${ROUTE_NAME_RULE}`);
    else if (routes.has(name) || name === DEFAULT_ROUTE) problems.push(`route ${name}: defined twice (${DEFAULT_ROUTE} is DIAL_TEMPLATE)`);
    const problem = templateProblem(template);
    if (problem) problems.push(`route ${name}: the template ${problem}`);
    routes.set(name, template);
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return routes;
}

/** The routes the operator defined, and which of them each account may use. */
export class DialRoutes {
  /** Routes set with the command line (kept in the store), then those of the environment, which win. */
  static over(
    store: { dialRoutes(): Readonly<Record<string, string>>; cached(id: string): { dial_routes?: string[] } | undefined },
    environment: Readonly<Record<string, string>>,
  ): DialRoutes {
    return new DialRoutes(() => new Map(Object.entries({ ...store.dialRoutes(), ...environment })), (id) => store.cached(id)?.dial_routes);
  }

  constructor(
    /** Every route by name, `default` included. */
    private readonly defined: () => ReadonlyMap<string, string>,
    /** The routes the operator allowed an account (undefined: only the default route). */
    private readonly allowedFor: (account: string) => readonly string[] | undefined,
  ) {}

  /** The routes an account may use now (allowed and defined). */
  namesFor(account: string | undefined): string[] {
    const defined = this.defined();
    const allowed = account === undefined ? [DEFAULT_ROUTE] : this.allowedFor(account) ?? [DEFAULT_ROUTE];
    return allowed.filter((name) => defined.has(name));
  }

  /** The route's template, whoever asks (the dialplan's entry uses the default route). */
  template(route: string): string | undefined {
    return this.defined().get(route);
  }

  /** The route's template, when the account may use it now; undefined otherwise. */
  templateFor(account: string | undefined, route: string): string | undefined {
    return this.namesFor(account).includes(route) ? this.defined().get(route) : undefined;
  }
}

/**
 * How a caller who transferred and left is called back when the target fails:
 * on the device the call came from (its channel's endpoint), on its caller id
 * number through the transfer's route (only where the PBX, not the phone, sets
 * caller ids: a caller could otherwise make konami dial any number), or not.
 */
export const RECALL_CALLERS = ['device', 'number', 'off'] as const;
export type RecallCallers = (typeof RECALL_CALLERS)[number];

/**
 * The device a channel came from, as a dial string (PJSIP/alice-0000002a →
 * PJSIP/alice, IAX2/alice-1234 → IAX2/alice); undefined for anything else.
 */
export function deviceOf(channelName: string): string | undefined {
  const m = /^(PJSIP|SIP)\/([A-Za-z0-9_.+-]{1,64})-[0-9a-f]{8}$/.exec(channelName)
    ?? /^(IAX2)\/([A-Za-z0-9_.+-]{1,64})-\d{1,5}$/.exec(channelName);
  return m ? `${m[1]}/${m[2]}` : undefined;
}
