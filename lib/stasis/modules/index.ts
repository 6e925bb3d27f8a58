// The feature modules konami ships. A new feature is a file here and a line below.
import { ModuleRegistry } from '../../metaflow/modules.js';
import type { Call } from '../call.js';
import { resumeModule } from './resume.js';
import { transferModule } from './transfer.js';

export function builtInModules(): ModuleRegistry<Call> {
  return new ModuleRegistry<Call>()
    .register(transferModule)
    .register(resumeModule);
}
