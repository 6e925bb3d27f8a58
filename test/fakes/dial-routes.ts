// Dial routes as the operator would define them, for tests without a store.
import { DialRoutes } from '../../lib/stasis/dial.js';

export function fixedRoutes(routes: Record<string, string>, allowed: Record<string, string[]> = {}): DialRoutes {
  const table = new Map(Object.entries(routes));
  return new DialRoutes(() => table, (account) => allowed[account]);
}
