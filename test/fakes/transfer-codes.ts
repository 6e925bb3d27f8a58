// The feature codes the transfer unit tests dial: *21<n> (one recall),
// *23<n> (two recalls 5 s apart), *25<n> (through the dial route "pstn"),
// *24<n> (blind, one recall, Kazoo's ringback tone), *26<n> (takeback #9),
// *22 (resume).
import { validateMetaflows } from '../../lib/metaflow/config.js';
import { Matcher } from '../../lib/metaflow/matcher.js';
import { builtInModules } from '../../lib/stasis/modules/index.js';

export function transferCodes(): { registry: ReturnType<typeof builtInModules>; matcher: Matcher } {
  const registry = builtInModules();
  const matcher = new Matcher(validateMetaflows({
    numbers: { 22: { module: 'resume' } },
    patterns: {
      '21(\\d+)': { module: 'transfer', data: { ring_timeout: 20, recall_attempts: 1, recall_delay: 5 } },
      '23(\\d+)': { module: 'transfer', data: { ring_timeout: 20, recall_attempts: 2, recall_delay: 5 } },
      '25(\\d+)': { module: 'transfer', data: { dial_route: 'pstn', recall_attempts: 0 } },
      '24(\\d+)': { module: 'transfer', data: { transfer_type: 'blind', recall_attempts: 1, ringback: '%(1000,3000,425)' } },
      '26(\\d+)': { module: 'transfer', data: { takeback_dtmf: '#9' } },
    },
  }, registry, { dialRoutes: ['default', 'pstn'] }));
  return { registry, matcher };
}
