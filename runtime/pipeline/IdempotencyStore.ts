/** Outcome of {@link IdempotencyStore.claim}. */
export type ClaimResult = 'claimed' | 'in-progress' | 'done';

/**
 * Remembers which message ids a group has processed, so an at-least-once redelivery is not handled
 * twice. `claim` takes a short lease before the handler runs; `complete` records the id as done for
 * `ttlMs`; `release` drops the lease when the handler failed, so a retry can claim again.
 */
export interface IdempotencyStore {
  /** Claims `key` for `leaseMs`. */
  claim(key: string, leaseMs: number): Promise<ClaimResult>;
  /** Marks `key` done for `ttlMs`. */
  complete(key: string, ttlMs: number): Promise<void>;
  /** Drops a claim that did not complete. */
  release(key: string): Promise<void>;
}
