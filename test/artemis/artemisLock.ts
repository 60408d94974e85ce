/**
 * The lock that keeps an Artemis restart (the fault tests) away from the other Artemis test files
 * of the same run: those hold it shared, the restart holds it exclusive (see `holdFileLock`).
 *
 * @packageDocumentation
 */

/** `flock(1)` lock file of the Artemis tests. */
export const ARTEMIS_LOCK = '/tmp/omniqueue-test-artemis.lock';
