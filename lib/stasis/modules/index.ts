// The feature modules konami ships. A new feature is a file here and a line below.
import { ModuleRegistry } from '../../metaflow/modules.js';
import type { CallPort } from '../features.js';
import { resumeModule } from './resume.js';
import { transferModule } from './transfer.js';

export function builtInModules(): ModuleRegistry<CallPort> {
  return new ModuleRegistry<CallPort>()
    .register(transferModule)
    .register(resumeModule);
}
