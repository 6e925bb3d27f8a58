// Compiled metaflows per account, rebuilt only when the account changes. The
// call path asks for a matcher on every digit, so this never does I/O.
import type { Logger } from '../log.js';
import { Matcher } from './matcher.js';
import type { MetaflowConfig } from './types.js';

export class MetaflowBook {
  private readonly compiled = new Map<string, { source: MetaflowConfig; matcher: Matcher | undefined }>();

  constructor(
    /** The account's current metaflows (null or undefined: none). */
    private readonly lookup: (accountId: string) => MetaflowConfig | null | undefined,
    private readonly log?: Logger,
  ) {}

  matcherFor(accountId: string | undefined): Matcher | undefined {
    if (!accountId) return undefined;
    const source = this.lookup(accountId);
    if (!source) return undefined;
    const known = this.compiled.get(accountId);
    if (known && known.source === source) return known.matcher;
    let matcher: Matcher | undefined;
    try {
      matcher = new Matcher(source);
    } catch (err) {
      // Only a file edited by hand can get here: saved metaflows were validated.
      this.log?.error({ account: accountId, err: (err as Error).message }, 'stored metaflows do not compile: codes disabled');
    }
    this.compiled.set(accountId, { source, matcher });
    return matcher;
  }
}
