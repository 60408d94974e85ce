import type { AdapterFeatures } from '../../runtime/contract.js';
import type { Broker, BrokerOptions } from '../../runtime/Broker.js';

/**
 * One thing the conformance suite runs against: an adapter on a real broker, or a trigger driven
 * through its local runner. Each runner file in this folder builds one target and calls
 * `runConformance(target)`.
 */
export interface ConformanceTarget {
  /** Shown in test names. */
  readonly name: string;
  /** Declared features; scenarios needing a missing feature are reported as not applicable. */
  readonly features: AdapterFeatures;
  /** A new, initialised broker on the target. The scenario closes it. */
  connect(options?: BrokerOptions): Promise<Broker>;
  /**
   * Publishes raw bytes with native headers to `topic` the way a plain client of the broker would
   * (no OmniQueue metadata), for the interop and poison-message scenarios.
   */
  publishForeign(topic: string, payload: Uint8Array, headers: Record<string, string>): Promise<void>;
  /** Multiplies every wait in the suite (slow brokers set 2–5). Default 1. */
  readonly timeScale?: number;
  /** Restarts the broker (for reconnect scenarios), when the target can. */
  restart?(): Promise<void>;
}
