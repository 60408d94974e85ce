/**
 * Short recovery times shared by the crash tests and their child worker, so a SIGKILLed consumer's
 * messages come back within seconds instead of the production defaults (15–60 s).
 */
export const CRASH_SETTINGS = Object.freeze({
  /** Redis Streams: entries idle for 1 s are claimed by the surviving consumer. */
  streams: { url: 'redis://127.0.0.1:6379', claimIdleMs: 1_000 },
  /** BullMQ: locks last 1 s, stalled checks every 500 ms. */
  bullmq: { url: 'redis://127.0.0.1:6379', lockDurationMs: 1_000, stalledIntervalMs: 500 },
});
