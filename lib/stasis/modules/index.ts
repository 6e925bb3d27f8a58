// The feature modules konami ships. A new feature is a file here and a line below.
import { ModuleRegistry } from '../../metaflow/modules.js';
import type { Call } from '../call.js';

export function builtInModules(): ModuleRegistry<Call> {
  return new ModuleRegistry<Call>();
}
