// Whose calls a request may see. An account's token sees the account's calls;
// a user's token, only the user's own (calls with one of the user's numbers as
// a party). Under /users/{USER_ID}/..., the calls of that user: to the account
// or to that same user; any other user answers as if it did not exist.
import type { Context } from 'koa';
import type { Scope } from '../stasis/control.js';
import type { AccountStore } from '../store/accounts.js';
import type { ApiState } from './envelope.js';

/** The request's scope, read afresh each time it is called (a user's numbers may change); undefined: nothing to see. */
export function scopeOf(ctx: Context, accounts: Pick<AccountStore, 'cached'>): Scope | undefined {
  const { accountId, userId } = ctx.state as ApiState;
  const asked = (ctx.params as Record<string, string | undefined>)['userId'];
  if (asked !== undefined && userId !== undefined && asked !== userId) return undefined;
  const who = asked ?? userId;
  if (who === undefined) return { account: accountId! };
  const user = accounts.cached(accountId!)?.users?.find((u) => u.id === who);
  return user ? { account: accountId!, numbers: new Set(user.numbers ?? []) } : undefined;
}
