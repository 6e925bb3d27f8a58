// The one interface between the digit engine and what a feature does to a
// call. lib/metaflow decides "module X with these captures"; a module (the
// transfer and resume modules live with the call logic in lib/stasis) acts.
import type Joi from 'joi';
import type { LegRole } from './types.js';

/** A feature code that matched, as the module receives it. */
export interface CodeMatch {
  module: string;
  /** The `data` object configured with the code. */
  data: Readonly<Record<string, unknown>>;
  /** The digits collected after the binding digit (without it, without `#`). */
  collected: string;
  /** The pattern's capture groups in order ('' for a group that took no part); empty for a number. */
  captures: readonly string[];
  /** Which table matched, and the key that matched. */
  source: { table: 'numbers' | 'patterns'; key: string };
}

/** The code and the party who pressed it. */
export interface Invocation extends CodeMatch {
  leg: LegRole;
}

/**
 * A feature. `Target` is what the module acts on: the call, as lib/stasis
 * exposes it to modules. `dataSchema` validates the code's `data` when an
 * admin saves metaflows, so a bad value is refused then, not mid-call; every
 * module has one, and what it does not name is refused (a module that takes
 * nothing says so with an empty object schema).
 */
export interface FeatureModule<Target> {
  readonly name: string;
  readonly description: string;
  readonly dataSchema: Joi.ObjectSchema;
  run(target: Target, invocation: Invocation): Promise<void>;
}

export class ModuleRegistry<Target> {
  private readonly modules = new Map<string, FeatureModule<Target>>();

  register(module: FeatureModule<Target>): this {
    if (this.modules.has(module.name)) throw new Error(`feature module "${module.name}" is registered twice`);
    this.modules.set(module.name, module);
    return this;
  }

  get(name: string): FeatureModule<Target> | undefined {
    return this.modules.get(name);
  }

  names(): string[] {
    return [...this.modules.keys()];
  }
}
