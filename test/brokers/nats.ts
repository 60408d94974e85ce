/**
 * Test helper for the machine's NATS server with JetStream (127.0.0.1:4222): checks that it
 * answers, starts it with the machine's command when it does not (and says so), and tells tests
 * whether to run, fail or report the gap. Also restarts the server for the fault tests.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { BrokerUnavailableError } from '../../runtime/errors.js';

const run = promisify(execFile);

/** Where the shared test NATS listens. */
export const NATS_SERVERS = process.env.NATS_URL ?? '127.0.0.1:4222';

/** The machine's command that starts nats-server with JetStream (idempotent: `--oknodo`). */
export const NATS_START_COMMAND = [
  'start-stop-daemon',
  ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/nats-server', '--', '-a', '127.0.0.1', '-p', '4222', '-js', '-sd', '/var/lib/nats-server', '-l', '/var/log/nats-server.log'],
] as const;

/** A NATS server the tests may use; disposing it does nothing to the server (it is shared). */
export interface NatsHandle extends AsyncDisposable {
  /** Server address. */
  readonly servers: string;
}

/** Does a NATS server with JetStream answer? */
export async function natsAnswers(): Promise<boolean> {
  try {
    const nc = await connect({ servers: NATS_SERVERS, timeout: 2_000, reconnect: false });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      await jsm.getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

async function waitUntilAnswers(timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await natsAnswers()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/** Runs the machine's start command. */
export async function startNatsServer(): Promise<void> {
  await run(NATS_START_COMMAND[0], [...NATS_START_COMMAND[1]], { timeout: 30_000 });
}

/**
 * Makes sure NATS with JetStream answers; when it does not, runs the machine's start command and
 * says so on stderr. Rejects with {@link BrokerUnavailableError} when it still does not answer.
 */
export async function ensureNats(): Promise<NatsHandle> {
  if (!(await natsAnswers())) {
    try {
      await startNatsServer();
    } catch (error) {
      throw new BrokerUnavailableError(`NATS is not running at ${NATS_SERVERS} and its start command failed: ${(error as Error).message}`, { cause: error });
    }
    console.warn(`[omniqueue] NATS did not answer; started it with '${NATS_START_COMMAND[0]} ${NATS_START_COMMAND[1].join(' ')}'.`);
    if (!(await waitUntilAnswers(20_000))) throw new BrokerUnavailableError(`NATS did not answer at ${NATS_SERVERS} within 20 s of starting it.`);
  }
  return { servers: NATS_SERVERS, [Symbol.asyncDispose]: async () => {} };
}

/**
 * Resolved once per test file: undefined when the NATS tests run, else why not. With
 * `OMNIQUEUE_REQUIRE_BROKERS=1` a missing server throws (the suite fails).
 */
export async function natsMissing(): Promise<string | undefined> {
  try {
    await ensureNats();
    return undefined;
  } catch (error) {
    if (process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw error;
    const reason = (error as Error).message;
    console.warn(`[omniqueue] NATS tests skipped: ${reason}`);
    return reason;
  }
}

/** Pid of the process listening on the NATS port, from `ss`. */
async function natsServerPid(): Promise<number | undefined> {
  const { stdout } = await run('ss', ['-ltnpH', 'sport = :4222']);
  const match = /pid=(\d+)/.exec(stdout);
  return match ? Number(match[1]) : undefined;
}

/**
 * Restarts the NATS server: SIGTERM to the pid listening on 4222, wait until it is gone, a pause
 * of `downMs`, then the machine's start command. JetStream data (file storage) survives. Only the
 * fault tests call this: the server is shared, keep the outage short.
 */
export async function restartNatsServer(downMs = 1_000): Promise<void> {
  const pid = await natsServerPid();
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    await new Promise((resolve) => setTimeout(resolve, downMs));
  } finally {
    await startNatsServer();
  }
  if (!(await waitUntilAnswers(20_000))) throw new BrokerUnavailableError('NATS did not answer within 20 s of restarting it.');
}

/** Lock file that orders NATS test files against the fault test's server restart. */
export const NATS_LOCK = '/tmp/omniqueue-test-nats.lock';
