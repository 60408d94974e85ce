/**
 * Test helpers for the SNS/SQS emulator started by `test/brokers/sqs.sh` (fauxqs on
 * 127.0.0.1:4566, or `OMNIQUEUE_SQS_ENDPOINT`).
 *
 * @packageDocumentation
 */
import { BrokerUnavailableError } from '../../runtime/errors.js';
import type { SqsAdapterOptions } from '../../adapters/sqs/SqsAdapter.js';

/** Endpoint of the emulator. */
export const SQS_ENDPOINT = process.env.OMNIQUEUE_SQS_ENDPOINT ?? `http://127.0.0.1:${process.env.FAUXQS_PORT ?? '4566'}`;

/** Region the tests use. */
export const SQS_REGION = 'us-east-1';

/** Client settings for the emulator (any credentials are accepted). */
export const SQS_CLIENT_CONFIG = {
  region: SQS_REGION,
  endpoint: SQS_ENDPOINT,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
};

/**
 * Adapter settings for the emulator: short long-polls keep tests and close() quick. A receive that
 * close() aborts may already have taken messages off the queue; they come back after the visibility
 * timeout, kept at 10 s here so tests that reopen subscribers see them within their wait.
 */
export function sqsTestOptions(overrides: SqsAdapterOptions = {}): SqsAdapterOptions {
  return { ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials }, waitTimeSeconds: 2, visibilityTimeoutSeconds: 10, ...overrides };
}

/**
 * Why the emulator cannot be used, or undefined when it answers. With OMNIQUEUE_REQUIRE_BROKERS=1 a
 * missing emulator throws instead, so the test file fails.
 */
export async function sqsMissing(): Promise<string | undefined> {
  let reason: string | undefined;
  try {
    await fetch(SQS_ENDPOINT, { signal: AbortSignal.timeout(2_000) });
  } catch (error) {
    reason = `SNS/SQS emulator not reachable at ${SQS_ENDPOINT} (${(error as Error).message}); start it with: bash test/brokers/sqs.sh start`;
  }
  if (reason && process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw new BrokerUnavailableError(reason);
  if (reason) console.warn(`[skipped] ${reason}`);
  return reason;
}
