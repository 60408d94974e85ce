/**
 * Test helper for the Artemis broker of `test/brokers/artemis.sh` (AMQP on 127.0.0.1:5673, user
 * and password `omniqueue`): checks that it answers, starts it with the script when it does not
 * (saying so), and tells tests whether to run, fail or report the gap. Also restarts it for the
 * fault tests.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BrokerUnavailableError } from '../../runtime/errors.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./artemis.sh', import.meta.url));

/** Where the test Artemis listens, and its fixed test credentials. */
export const ARTEMIS = Object.freeze({ host: '127.0.0.1', port: 5673, username: 'omniqueue', password: 'omniqueue' });

/** Does the AMQP port answer? */
export function artemisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: ARTEMIS.host, port: ARTEMIS.port });
    socket.setTimeout(2_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

/** Runs `artemis.sh <command>` (start, stop, restart), its progress going to stderr. */
export async function artemisScript(command: 'start' | 'stop' | 'restart'): Promise<void> {
  const { stderr } = await run('bash', [SCRIPT, command], { timeout: 300_000 });
  if (stderr) process.stderr.write(stderr);
}

/**
 * Resolved once per test file: undefined when the Artemis tests run, else why not. Starts the
 * broker with the script when it does not answer. With `OMNIQUEUE_REQUIRE_BROKERS=1` a broker that
 * cannot be started throws (the suite fails).
 */
export async function artemisMissing(): Promise<string | undefined> {
  if (await artemisAnswers()) return undefined;
  try {
    console.warn('[omniqueue] Artemis did not answer on 127.0.0.1:5673; starting it with test/brokers/artemis.sh start');
    await artemisScript('start');
    if (await artemisAnswers()) return undefined;
    throw new BrokerUnavailableError('Artemis did not answer on 127.0.0.1:5673 after test/brokers/artemis.sh start.');
  } catch (error) {
    const failure = error instanceof BrokerUnavailableError ? error : new BrokerUnavailableError(`Artemis could not be started: ${(error as Error).message}`, { cause: error });
    if (process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw failure;
    console.warn(`[omniqueue] Artemis tests skipped: ${failure.message}`);
    return failure.message;
  }
}
