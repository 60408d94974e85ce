/**
 * Test helper for the machine's RabbitMQ (127.0.0.1:5672, guest/guest): checks that it answers,
 * starts it with the machine's command when it does not (and says so), and tells tests whether to
 * run, fail or report the gap. Also restarts the RabbitMQ application for the fault tests.
 *
 * @packageDocumentation
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { BrokerUnavailableError } from '../../runtime/errors.js';

const run = promisify(execFile);

/** Where the shared test RabbitMQ listens. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** A RabbitMQ the tests may use; disposing it does nothing to the broker (it is shared). */
export interface RabbitHandle extends AsyncDisposable {
  /** Connection URL. */
  readonly url: string;
}

/** Does RabbitMQ accept an AMQP connection at `url`? */
export async function rabbitAnswers(url: string = AMQP_URL): Promise<boolean> {
  try {
    const connection = await amqp.connect(url, { timeout: 2_000 });
    connection.on('error', () => undefined);
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

async function waitUntilAnswers(timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await rabbitAnswers()) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

/**
 * Makes sure RabbitMQ answers at {@link AMQP_URL}. When it does not: if the node runs with its
 * application stopped (a fault test died between `stop_app` and `start_app`), `rabbitmqctl
 * start_app`; else `rabbitmq-server -detached`. Says on stderr what it did. Rejects with
 * {@link BrokerUnavailableError} when it still does not answer within 60 s.
 */
export async function ensureRabbitMQ(): Promise<RabbitHandle> {
  if (!(await rabbitAnswers())) {
    let how: string;
    try {
      await run('rabbitmqctl', ['-q', 'status'], { timeout: 15_000 });
      how = 'rabbitmqctl start_app';
      await run('rabbitmqctl', ['start_app'], { timeout: 60_000 });
    } catch {
      how = 'rabbitmq-server -detached';
      try {
        await run('rabbitmq-server', ['-detached'], { timeout: 30_000 });
      } catch (error) {
        throw new BrokerUnavailableError(`RabbitMQ is not running at 127.0.0.1:5672 and 'rabbitmq-server -detached' failed: ${(error as Error).message}`, { cause: error });
      }
    }
    console.warn(`[omniqueue] RabbitMQ did not answer; restarted it with '${how}'.`);
    if (!(await waitUntilAnswers(60_000))) throw new BrokerUnavailableError(`RabbitMQ did not answer at 127.0.0.1:5672 within 60 s of '${how}'.`);
  }
  return { url: AMQP_URL, [Symbol.asyncDispose]: async () => {} };
}

/**
 * Resolved once per test file: undefined when the RabbitMQ tests run, else why not. With
 * `OMNIQUEUE_REQUIRE_BROKERS=1` a missing RabbitMQ throws (the suite fails); without it the reason
 * is printed and the caller skips with `describe.skipIf(missing !== undefined)`.
 */
export async function rabbitMissing(): Promise<string | undefined> {
  try {
    await ensureRabbitMQ();
    return undefined;
  } catch (error) {
    if (process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw error;
    const reason = (error as Error).message;
    console.warn(`[omniqueue] RabbitMQ tests skipped: ${reason}`);
    return reason;
  }
}

/**
 * Restarts the RabbitMQ application (`rabbitmqctl stop_app`, a pause of `downMs`, `start_app`):
 * every client connection is dropped; durable queues and persistent messages survive. Only the
 * fault tests call this: the broker is shared, keep the outage short.
 */
export async function restartRabbitApp(downMs = 1_000): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
  try {
    await new Promise((resolve) => setTimeout(resolve, downMs));
  } finally {
    await run('rabbitmqctl', ['start_app'], { timeout: 60_000 });
  }
  if (!(await waitUntilAnswers(60_000))) throw new BrokerUnavailableError('RabbitMQ did not answer within 60 s of start_app.');
}

/**
 * Deletes every queue and exchange a test created for these topics: the exchange named after the
 * topic and every queue named `<topic>.…` or `<topic>:…` (group, retry and delay queues). Topic
 * names in tests are unique, so the prefix match touches nothing else on the shared broker.
 */
export async function deleteRabbitTopics(topics: Iterable<string>): Promise<void> {
  const names = [...new Set(topics)];
  if (names.length === 0) return;
  const owned = (name: string): boolean => names.some((topic) => name === topic || name.startsWith(`${topic}.`) || name.startsWith(`${topic}:`));
  const list = async (what: 'list_queues' | 'list_exchanges'): Promise<string[]> => {
    const { stdout } = await run('rabbitmqctl', ['-q', what, 'name', '--no-table-headers'], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    return stdout.split('\n').map((line) => line.trim()).filter((line) => line.length > 0 && owned(line));
  };
  const [queues, exchanges] = [await list('list_queues'), await list('list_exchanges')];
  const connection = await amqp.connect(AMQP_URL);
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Lock file that orders RabbitMQ test files against the fault test's broker restart. */
export const RABBIT_LOCK = '/tmp/omniqueue-test-rabbitmq.lock';

/**
 * Holds a `flock(1)` lock on `path` until the returned handle is disposed: `shared` for test files
 * that only use the broker, `exclusive` around a broker restart, so a restart never happens while
 * another test file of the same run talks to that broker.
 */
export async function holdFileLock(path: string, mode: 'shared' | 'exclusive'): Promise<AsyncDisposable> {
  const child = spawn('flock', [mode === 'shared' ? '-s' : '-x', path, 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock exited with ${code}`)));
    child.stdout.once('data', () => resolve());
  });
  child.removeAllListeners('exit');
  return {
    [Symbol.asyncDispose]: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}
