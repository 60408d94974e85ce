import { InvalidOptionsError } from '../errors.js';

/** How failed messages are retried before they are dead-lettered. */
export interface RetryPolicy {
  /** Total deliveries allowed, the first included. Default 5. */
  readonly maxAttempts: number;
  /** Backoff before the second attempt. Default 200 ms. */
  readonly initialDelayMs: number;
  /** Backoff ceiling. Default 60 s. */
  readonly maxDelayMs: number;
  /** Growth factor per attempt. Default 2. */
  readonly multiplier: number;
  /** `equal`: half the delay is random (never below half); `full`: 0…delay; `none`: exact. Default `equal`. */
  readonly jitter: 'equal' | 'full' | 'none';
}

/** The defaults: 5 attempts, 200 ms doubling to at most 60 s, equal jitter. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 200,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 'equal',
});

/** Fills a partial policy with the defaults and checks its ranges. */
export function resolveRetryPolicy(partial: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...stripUndefined(partial ?? {}) };
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new InvalidOptionsError(`retry.maxAttempts must be an integer ≥ 1, got ${policy.maxAttempts}.`);
  }
  if (!(policy.initialDelayMs >= 0) || !(policy.maxDelayMs >= policy.initialDelayMs)) {
    throw new InvalidOptionsError('retry delays must satisfy 0 ≤ initialDelayMs ≤ maxDelayMs.');
  }
  if (!(policy.multiplier >= 1)) throw new InvalidOptionsError(`retry.multiplier must be ≥ 1, got ${policy.multiplier}.`);
  if (!['equal', 'full', 'none'].includes(policy.jitter)) throw new InvalidOptionsError(`retry.jitter must be equal, full or none.`);
  return policy;
}

/** Backoff before the attempt that follows `failedAttempt` (1-based), with the policy's jitter. */
export function backoffDelay(policy: RetryPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const exponential = policy.initialDelayMs * policy.multiplier ** Math.max(0, failedAttempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  switch (policy.jitter) {
    case 'none':
      return Math.round(capped);
    case 'full':
      return Math.round(capped * random());
    case 'equal':
      return Math.round(capped / 2 + (capped / 2) * random());
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
