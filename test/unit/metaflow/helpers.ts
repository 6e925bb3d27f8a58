import Joi from 'joi';
import { validateMetaflows } from '../../../lib/metaflow/config.js';
import { Matcher } from '../../../lib/metaflow/matcher.js';
import { ModuleRegistry, type FeatureModule } from '../../../lib/metaflow/modules.js';

function module(name: string, dataSchema: Joi.ObjectSchema = Joi.object({})): FeatureModule<unknown> {
  return { name, description: name, dataSchema, run: async () => undefined };
}

/** Modules as a test sees them: transfer takes an optional string target, like the real one; probe takes any data. */
export function testRegistry(): ModuleRegistry<unknown> {
  return new ModuleRegistry<unknown>()
    .register(module('transfer', Joi.object({ target: Joi.string().pattern(/^[0-9*#]+$/) })))
    .register(module('resume'))
    .register(module('probe', Joi.object().unknown(true)));
}

export function matcherFor(raw: Record<string, unknown>): Matcher {
  return new Matcher(validateMetaflows(raw, testRegistry()));
}
