// The feature modules konami ships. A new feature is a file here and a line below.
import { ModuleRegistry } from '../../metaflow/modules.js';
import type { Call } from '../call.js';
import { resumeModule } from './resume.js';
import { transferModule } from './transfer.js';

export interface ModuleDefaults {
  /** The transfer dial template when a code's data gives none ({target}). */
  transferDialTemplate: string;
}

export function builtInModules(defaults: ModuleDefaults = { transferDialTemplate: 'PJSIP/{target}' }): ModuleRegistry<Call> {
  return new ModuleRegistry<Call>()
    .register(transferModule(defaults.transferDialTemplate))
    .register(resumeModule);
}
