/**
 * Polling helpers for the conformance suite: scenarios wait for a condition, never for a fixed time.
 *
 * @packageDocumentation
 */
import { TimeoutError } from '../../runtime/errors.js';

/** How often the helpers look at their predicate, in milliseconds. */
const POLL_INTERVAL_MS = 5;

/** A description of what is awaited, or a function that describes the current state on failure. */
export type Describe = string | (() => string);

/**
 * Resolves as soon as `predicate` holds; rejects with a {@link TimeoutError} naming `what` when it
 * still does not hold after `timeoutMs`.
 */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: Describe): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (predicate()) return;
    if (performance.now() >= deadline) {
      throw new TimeoutError(`Timed out after ${Math.round(timeoutMs)} ms waiting for ${typeof what === 'string' ? what : what()}.`);
    }
    await pause(POLL_INTERVAL_MS);
  }
}

/**
 * Checks that `predicate` keeps holding for `durationMs` (a quiet window: "nothing more arrives"),
 * rejecting as soon as it stops holding.
 */
export async function holdsFor(predicate: () => boolean, durationMs: number, what: Describe): Promise<void> {
  const deadline = performance.now() + durationMs;
  for (;;) {
    if (!predicate()) throw new Error(`Expected ${typeof what === 'string' ? what : what()} to hold for ${Math.round(durationMs)} ms, but it stopped holding.`);
    if (performance.now() >= deadline) return;
    await pause(POLL_INTERVAL_MS);
  }
}

/** Resolves after `ms` milliseconds: for slow handlers and publisher pacing, never to wait for a result. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lets pending I/O and timers run once. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
