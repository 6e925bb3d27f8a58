// What a call needs to run feature codes: the account's compiled metaflows and
// the modules that act on calls. Built in the composition root.
import type { Matcher } from '../metaflow/matcher.js';
import type { FeatureModule } from '../metaflow/modules.js';
import type { Call } from './call.js';

export type CallModule = FeatureModule<Call>;

export interface CallFeatures {
  matcher(account: string | undefined): Matcher | undefined;
  module(name: string): CallModule | undefined;
}

export const NO_FEATURES: CallFeatures = {
  matcher: () => undefined,
  module: () => undefined,
};
