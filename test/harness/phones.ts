// The tests' phones: simulated phones (lib/demo/phones.ts) on an ARI
// application of their own ("konami-phones"), which the sandbox's "phones"
// context hands every number to, with a clean slate between tests.
import type { SandboxEnv } from './sandbox.js';
import { assertNothingLeft } from './asterisk.js';
import { SimulatedPhones, phonesConnection } from '../../lib/demo/phones.js';

export { Phone, type CallOptions } from '../../lib/demo/phones.js';

export const PHONES_APP = 'konami-phones';

export class Phones extends SimulatedPhones {
  static async connect(env: SandboxEnv): Promise<Phones> {
    return new Phones(await phonesConnection(env, PHONES_APP), PHONES_APP);
  }

  /** Hangs up everything left in Asterisk and destroys every bridge: a clean slate for the next test. */
  async reset(): Promise<void> {
    for (const c of await this.ari.listChannels()) await this.ari.hangup(c.id).catch(() => undefined);
    for (const b of await this.ari.listBridges()) await this.ari.destroyBridge(b.id).catch(() => undefined);
    this.phones.clear();
    this.arrivals.clear();
    this.arrivalWaiters.clear();
    this.started.clear();
  }

  /**
   * After a test: Asterisk must hold no channel and no bridge (nothing leaked);
   * whatever the outcome, everything is cleared for the next test.
   */
  async checkNothingLeftAndReset(timeoutMs = 5000): Promise<void> {
    try {
      await assertNothingLeft(this.ari, timeoutMs);
    } finally {
      await this.reset();
    }
  }
}
