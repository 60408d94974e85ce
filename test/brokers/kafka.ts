/**
 * Test helper for Kafka: starts the single-node KRaft broker of `test/brokers/kafka.sh` (jars from
 * Maven Central, cached outside the repo) and tells tests whether to run, fail or report the gap.
 *
 * With `OMNIQUEUE_KAFKA_BROKERS=host:port,…` set, that cluster is used as it is and the script is
 * not run.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BrokerUnavailableError } from '../../runtime/errors.js';

/** The start script beside this file. */
export const KAFKA_SCRIPT = fileURLToPath(new URL('./kafka.sh', import.meta.url));

/** Bootstrap brokers the tests use. */
export const KAFKA_BROKERS: readonly string[] = (process.env.OMNIQUEUE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((broker) => broker.trim());

const external = process.env.OMNIQUEUE_KAFKA_BROKERS !== undefined;

/** A running Kafka for tests. Disposing it leaves the broker running unless asked to stop it. */
export interface KafkaHandle extends AsyncDisposable {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Restarts the broker process (fault tests); only for the script's own broker. */
  restart(): Promise<void>;
  /** Stops the broker process; only for the script's own broker. */
  stop(): Promise<void>;
}

/** Options of {@link startKafka}. */
export interface StartKafkaOptions {
  /**
   * Port of a separate, private broker instance (its controller takes the next port), for tests
   * that restart or stop their broker without disturbing the shared one on 9092. Ignored when
   * `OMNIQUEUE_KAFKA_BROKERS` is set.
   */
  readonly port?: number;
  /** Stop the broker when the handle is disposed. Default false: later test files reuse it. */
  readonly stopOnDispose?: boolean;
  /** Longest the script may take (the first run resolves ~55 MB of jars). Default 10 min. */
  readonly timeoutMs?: number;
}

/** Runs `kafka.sh <command>` (on the instance at `port`, default 9092), its progress lines going to this process's stderr. */
export function runKafkaScript(command: 'start' | 'stop' | 'restart' | 'status' | 'reset', timeoutMs = 600_000, port?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = port === undefined ? process.env : { ...process.env, OMNIQUEUE_KAFKA_PORT: String(port) };
    const child = execFile('bash', [KAFKA_SCRIPT, command], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env }, (error, stdout, stderr) => {
      if (error) reject(new BrokerUnavailableError(`test/brokers/kafka.sh ${command} failed: ${error.message}\n${stderr.split('\n').slice(-15).join('\n')}`, { cause: error }));
      else resolve(stdout);
    });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  });
}

/** Is something listening at `host:port`? */
export function portOpen(hostPort: string, timeoutMs = 1_000): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const socket = connect({ host: host ?? '127.0.0.1', port: Number(port ?? 9092), timeout: timeoutMs });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/**
 * Makes sure Kafka answers: runs `kafka.sh start` (idempotent; the first run resolves the jars and
 * formats the storage, later runs start from the cache in about 10 s). Rejects with
 * {@link BrokerUnavailableError} when it cannot.
 */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaHandle> {
  const port = external ? undefined : options.port;
  if (external) {
    if (!(await portOpen(KAFKA_BROKERS[0]!))) throw new BrokerUnavailableError(`OMNIQUEUE_KAFKA_BROKERS=${KAFKA_BROKERS.join(',')} does not answer.`);
  } else {
    await runKafkaScript('start', options.timeoutMs, port);
  }
  const own = (command: 'stop' | 'restart') => async () => {
    if (external) throw new BrokerUnavailableError(`Cannot ${command} the external Kafka at ${KAFKA_BROKERS.join(',')}.`);
    await runKafkaScript(command, options.timeoutMs, port);
  };
  const stop = own('stop');
  return {
    brokers: port === undefined ? KAFKA_BROKERS : [`127.0.0.1:${port}`],
    restart: own('restart'),
    stop,
    [Symbol.asyncDispose]: async () => {
      if (options.stopOnDispose && !external) await stop();
    },
  };
}

/**
 * Resolved once per test file: whether the Kafka tests run. With `OMNIQUEUE_REQUIRE_BROKERS=1` a
 * missing Kafka throws (the suite fails); without it the reason is printed and the caller skips
 * with `describe.skipIf(!available)`.
 */
export async function kafkaAvailable(): Promise<boolean> {
  try {
    await startKafka();
    return true;
  } catch (error) {
    if (process.env.OMNIQUEUE_REQUIRE_BROKERS === '1') throw error;
    console.warn(`[omniqueue] Kafka tests skipped: Kafka is not available (${(error as Error).message.split('\n')[0]}). Install a JDK 17+ and Maven, or set OMNIQUEUE_KAFKA_BROKERS.`);
    return false;
  }
}
