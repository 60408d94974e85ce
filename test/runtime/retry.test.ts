import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../../runtime/errors.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, resolveRetryPolicy } from '../../runtime/pipeline/retry.js';

describe('retry policy', () => {
  it('defaults to 5 attempts', () => {
    expect(resolveRetryPolicy(undefined).maxAttempts).toBe(5);
  });

  it('grows exponentially and stops at the ceiling', () => {
    const policy = resolveRetryPolicy({ initialDelayMs: 100, maxDelayMs: 1_000, jitter: 'none' });
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(policy, attempt))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('equal jitter stays between half and the full delay', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, initialDelayMs: 1_000, jitter: 'equal' as const };
    expect(backoffDelay(policy, 1, () => 0)).toBe(500);
    expect(backoffDelay(policy, 1, () => 0.999999)).toBe(1_000);
  });

  it('full jitter can reach zero', () => {
    expect(backoffDelay({ ...DEFAULT_RETRY_POLICY, jitter: 'full' }, 3, () => 0)).toBe(0);
  });

  it('rejects nonsense with a typed error', () => {
    expect(() => resolveRetryPolicy({ maxAttempts: 0 })).toThrow(InvalidOptionsError);
    expect(() => resolveRetryPolicy({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(InvalidOptionsError);
    expect(() => resolveRetryPolicy({ multiplier: 0.5 })).toThrow(/multiplier/);
  });
});
