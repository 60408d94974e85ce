/**
 * Delay buckets of the RabbitMQ adapter: a delay is rounded UP to the next bucket (never sooner
 * than asked), and every bucket is one queue with a queue-level TTL, so messages of one bucket
 * expire in arrival order and no message waits behind a longer one (no head-of-line blocking).
 *
 * The ladder is 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ ms from 10 ms to 80,000,000 ms (≈ 22 h):
 * a delay is lengthened by at most 25 %.
 *
 * @packageDocumentation
 */

const STEPS = [1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8] as const;

/** Every bucket in milliseconds, ascending. */
export const DELAY_BUCKETS_MS: readonly number[] = Object.freeze(
  [10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000].flatMap((decade) => STEPS.map((step) => Math.round(step * decade))),
);

/** Largest bucket; longer delays go to the per-message-TTL overflow queue. */
export const MAX_DELAY_BUCKET_MS: number = DELAY_BUCKETS_MS[DELAY_BUCKETS_MS.length - 1]!;

/**
 * The bucket a delay goes to: the smallest bucket ≥ `delayMs`, or `undefined` when the delay is
 * longer than every bucket (then the caller uses a per-message TTL).
 */
export function delayBucket(delayMs: number): number | undefined {
  if (delayMs > MAX_DELAY_BUCKET_MS) return undefined;
  let low = 0;
  let high = DELAY_BUCKETS_MS.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (DELAY_BUCKETS_MS[middle]! >= delayMs) high = middle;
    else low = middle + 1;
  }
  return DELAY_BUCKETS_MS[low]!;
}
