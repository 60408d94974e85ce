import { Presets, SingleBar } from 'cli-progress';
import { pino } from 'pino';
import type { Broker } from '../Broker.js';
import { ConfigError, InvalidOptionsError } from '../errors.js';
import { create, type CreateConfig } from '../registry.js';
import { loadTopology } from '../topology.js';
import { validateName } from '../validateName.js';
import { ensureAdapterRegistered } from '../worker/Worker.js';
import { ExitCode, exitCodeOf } from './exitCode.js';
import type { CliIo } from './program.js';
import { resolveConfigPath } from './resolveConfigPath.js';

/** Options of `omniqueue publish`, as parsed. */
export interface PublishCommandOptions {
  /** Body as JSON text. */
  readonly body: string;
  /** Copies to publish. */
  readonly count: number;
  /** `key=value` headers. */
  readonly header?: readonly string[];
  /** Ordering / partition key. */
  readonly key?: string;
  /** Topology file. */
  readonly config: string;
  /** Whether `--config` was given (else the default file names are searched). */
  readonly configGiven?: boolean;
}

/** Counts above this show progress. */
export const PROGRESS_THRESHOLD = 100;
/** Publishes kept in flight at once. */
const WINDOW = 64;

/**
 * `omniqueue publish TOPIC`: checks the arguments (exit 2 on invalid JSON, bad headers or names),
 * connects to the topology's broker, publishes `count` messages with a bounded number in flight,
 * shows progress for large counts and prints a summary. Resolves with the exit code.
 */
export async function runPublish(topic: string, options: PublishCommandOptions, io: CliIo): Promise<number> {
  const fail = (error: unknown): number => {
    io.stderr.write(`omniqueue publish: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  };
  let body: unknown;
  let headers: Record<string, string>;
  try {
    validateName('topic', topic);
    body = parseBody(options.body);
    headers = parseHeaders(options.header ?? []);
  } catch (error) {
    return fail(error);
  }

  let broker: Broker;
  let ensure: { createOptions: Readonly<Record<string, unknown>> | undefined } | undefined;
  try {
    const configPath = resolveConfigPath(options.config, options.configGiven ?? false);
    const topology = await loadTopology(configPath);
    const { name, ...settings } = topology.adapter;
    if (name === 'memory') {
      throw new ConfigError(
        `The topology ${configPath} uses the in-process memory adapter${topology.config.adapter ? '' : ' (it sets no `adapter`)'}: ` +
          'a message published by `omniqueue publish` would live and die inside this one command and could never reach a worker. ' +
          "Set `adapter` to a real broker (e.g. { name: 'rabbitmq', url: 'amqp://localhost' }), or publish from inside the worker process with the topology's onReady hook.",
      );
    }
    const declared = topology.config.topics[topic];
    if (declared) ensure = { createOptions: declared.createOptions };
    await ensureAdapterRegistered(name);
    const logger = pino({ level: 'warn' }, pino.destination(2));
    broker = await create(name, { ...settings, logger, tracing: false } as CreateConfig<string>);
    await broker.init();
  } catch (error) {
    return fail(error);
  }

  const progress = options.count > PROGRESS_THRESHOLD ? createProgress(options.count, io) : undefined;
  const started = performance.now();
  const ids: string[] = [];
  let sent = 0;
  let failure: unknown;
  try {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (failure === undefined && next < options.count) {
        next++;
        const receipt = await broker.publish(topic, { body, headers, key: options.key }, ensure ? { ensure: true, createOptions: ensure.createOptions } : {});
        if (ids.length < 1) ids.push(receipt.id);
        sent++;
        progress?.update(sent);
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, options.count) }, () => lane().catch((error: unknown) => void (failure ??= error))));
  } finally {
    progress?.stop();
    await broker.close().catch((error: unknown) => void (failure ??= error));
  }
  if (failure !== undefined) {
    io.stderr.write(`omniqueue publish: ${sent} of ${options.count} published before a failure.\n`);
    return fail(failure);
  }
  const elapsedMs = performance.now() - started;
  if (options.count === 1) io.stdout.write(`Published 1 message to ${topic}: id ${ids[0]}\n`);
  else io.stdout.write(`Published ${sent} messages to ${topic} in ${Math.round(elapsedMs)} ms (${Math.round((sent / elapsedMs) * 1000)} msg/s).\n`);
  return ExitCode.Ok;
}

/** Parses `--body`; invalid JSON is a usage error that shows where and an example. */
export function parseBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidOptionsError(
      `--body is not valid JSON (${(error as Error).message}). Quote it for the shell, e.g. --body '{"orderId":"o-1","amount":42}'; a plain string needs JSON quotes too: --body '"hello"'.`,
    );
  }
}

/** Parses repeated `--header key=value` options. */
export function parseHeaders(pairs: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidOptionsError(`--header '${pair}' must be key=value, e.g. --header tenant=acme.`);
    headers[pair.slice(0, at).trim()] = pair.slice(at + 1);
  }
  return headers;
}

interface Progress {
  update(sent: number): void;
  stop(): void;
}

function createProgress(total: number, io: CliIo): Progress {
  if (io.stderr.isTTY) {
    const bar = new SingleBar({
      stream: io.stderr,
      format: 'publishing |{bar}| {percentage}% {value}/{total} messages, ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
    }, Presets.shades_classic);
    bar.start(total, 0);
    return { update: (sent) => bar.update(sent), stop: () => bar.stop() };
  }
  const step = Math.max(1, Math.ceil(total / 10));
  const started = performance.now();
  let lastLine = started;
  return {
    update(sent) {
      const now = performance.now();
      if (sent % step !== 0 && sent !== total && now - lastLine < 2_000) return;
      lastLine = now;
      const rate = Math.round((sent / Math.max(1, now - started)) * 1000);
      io.stderr.write(`publishing: ${sent}/${total} (${Math.floor((sent / total) * 100)}%), ${rate} msg/s\n`);
    },
    stop() {},
  };
}
