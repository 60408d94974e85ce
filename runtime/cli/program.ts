import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_WORKER_PORT } from '../worker/Worker.js';
import { ExitCode, exitCodeOf } from './exitCode.js';
import { runPublish, type PublishCommandOptions } from './publishCommand.js';
import { runLambdaLocal, type LambdaLocalCommandOptions } from './lambdaLocalCommand.js';
import { registerInfraCommand } from './infraCommand.js';
import { runProvision, type ProvisionCommandOptions } from './provisionCommand.js';
import { runWorker, type WorkerCommandOptions } from './workerCommand.js';

/** Where the command writes; tests and embedders can redirect it. */
export interface CliIo {
  /** Normal output (results, help). */
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  /** Diagnostics, errors, progress. */
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

const MEMORY_NOTE =
  'The memory adapter (used when the topology sets no `adapter`) lives inside one process: a worker on it\n' +
  'only sees messages published in that same process (e.g. from the topology\'s onReady hook), so\n' +
  '`omniqueue publish` needs a topology with a real broker adapter (rabbitmq, kafka, nats, …).';

const ROOT_HELP = `
Examples:
  $ omniqueue worker
      run every worker group of ./omniqueue.config.ts; probes and metrics on :${DEFAULT_WORKER_PORT}
  $ omniqueue worker --config examples/orders/omniqueue.config.ts --group billing --port 0
      run only the billing group, HTTP on a random free port (logged at start)
  $ omniqueue publish orders --body '{"orderId":"o-1","amount":42}' --header tenant=acme --key customer-7
      publish one message through the topology's broker and print its id
  $ omniqueue publish orders --body '{"orderId":"load"}' --count 10000
      publish 10,000 messages with a progress bar on stderr

Exit codes:
  0  done (a worker exits 0 after a graceful SIGTERM/SIGINT shutdown)
  1  runtime failure: broker unreachable, publish rejected, worker failed to start
  2  usage or configuration error: unknown option, invalid JSON, invalid topology

Environment:
  LOG_LEVEL  worker log level: trace, debug, info (default), warn, error, silent

Note:
${indent(MEMORY_NOTE, 2)}
`;

const WORKER_HELP = `
Endpoints (on --port):
  GET /healthz   200 while the process is up
  GET /readyz    200 once the broker is initialised and every group is subscribed, 503 otherwise
  GET /metrics   Prometheus text: omniqueue_messages_{published,acked,retried,dead_lettered,duplicate}_total,
                 omniqueue_messages_in_flight, omniqueue_handler_duration_seconds, process metrics

Shutdown:
  On SIGTERM or SIGINT the worker stops pulling, lets the messages in flight finish and settle
  (up to --drain-timeout; anything unfinished then goes back to the broker for redelivery),
  closes the broker and exits 0. A second signal exits at once with code 1.

Logs are JSON lines on stdout (pino).

Examples:
  $ omniqueue worker --config omniqueue.config.ts
  $ omniqueue worker --group billing --group orders/inventory --port 9464 --drain-timeout 10000
`;

const PUBLISH_HELP = `
Examples:
  $ omniqueue publish orders --body '{"orderId":"o-1","amount":42}'
  $ omniqueue publish orders --body '{"orderId":"o-2"}' -H tenant=acme -H source=cli --key customer-7
  $ omniqueue publish orders --body '"plain JSON string"' --count 5000 --config staging.config.ts

The body is sent as JSON (content-type application/json). With --count above 100, progress is
shown on stderr: a progress bar on a terminal, a line every ~10% otherwise.

Note:
${indent(MEMORY_NOTE, 2)}
`;

/**
 * Builds the `omniqueue` command. Actions record their exit code instead of exiting, so the
 * program can run inside tests; {@link run} returns it.
 */
export function createProgram(io: CliIo = { stdout: process.stdout, stderr: process.stderr }): { program: Command; exitCode: () => number } {
  let exitCode: number = ExitCode.Ok;
  const program = new Command('omniqueue')
    .description('OmniQueue: one handler, every runtime.\nRun a topology\'s consumer groups as a container worker, or publish messages to its broker.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .helpCommand('help [command]', 'show help for a command')
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .showHelpAfterError('(run omniqueue --help for usage)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText('after', ROOT_HELP);

  program
    .command('worker')
    .summary('run the topology\'s groups as a long-running worker')
    .description(
      'Run the consumer groups of a topology file as a long-running worker: one subscription per group with\n' +
        'its retry, concurrency and dead-letter settings, HTTP health/readiness/metrics endpoints, JSON logs and a\n' +
        'graceful shutdown on SIGTERM/SIGINT.',
    )
    .option('-c, --config <file>', 'topology file', 'omniqueue.config.ts')
    .addOption(new Option('-g, --group <name>', 'run only this group: `group` or `topic/group` (repeatable; default: every group whose runtime is worker)').argParser(collect))
    .addOption(new Option('-p, --port <n>', 'HTTP port of /healthz, /readyz and /metrics; 0 picks a free port').default(DEFAULT_WORKER_PORT).argParser(port))
    .option('--host <address>', 'HTTP bind address', '0.0.0.0')
    .addOption(new Option('--drain-timeout <ms>', 'on shutdown, how long to wait for messages in flight').default(DEFAULT_DRAIN_TIMEOUT_MS).argParser(nonNegativeInteger))
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default(process.env.LOG_LEVEL ?? 'info'))
    .addHelpText('after', WORKER_HELP)
    .action(async (options: WorkerCommandOptions, command: Command) => {
      exitCode = await runWorker({ ...options, configGiven: command.getOptionValueSource('config') === 'cli' }, io);
    });

  program
    .command('publish')
    .summary('publish a message (or many) to a topic')
    .description('Publish a JSON message to TOPIC through the broker of the topology file; prints the message id.')
    .argument('<topic>', 'topic to publish to')
    .requiredOption('-b, --body <json>', 'message body, as JSON')
    .addOption(new Option('-n, --count <n>', 'publish this many copies (each with its own id)').default(1).argParser(positiveInteger))
    .addOption(new Option('-H, --header <key=value>', 'header to send (repeatable)').argParser(collect))
    .option('-k, --key <key>', 'ordering / partition key')
    .option('-c, --config <file>', 'topology file (its adapter is the broker to publish to)', 'omniqueue.config.ts')
    .addHelpText('after', PUBLISH_HELP)
    .action(async (topic: string, options: PublishCommandOptions, command: Command) => {
      exitCode = await runPublish(topic, { ...options, configGiven: command.getOptionValueSource('config') === 'cli' }, io);
    });

  program
    .command('provision')
    .summary('create or update what the topology needs on its broker')
    .description(
      'Create or update, on the topology\'s broker, what its groups need: topics, groups (queues, consumer groups, ' +
        'durable consumers, subscriptions) with settings derived from each retry policy, and every dead-letter topic. ' +
        'Prints the plan (create / update / unchanged / delete) before acting. Idempotent; never deletes anything without --prune.',
    )
    .option('-c, --config <file>', 'topology file', 'omniqueue.config.ts')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--prune', 'also delete, on each declared topic, the groups the topology does not declare (adapters that cannot list groups refuse, changing nothing)')
    .addHelpText('after', '\nExamples:\n  $ omniqueue provision --config omniqueue.config.ts --dry-run\n  $ omniqueue provision\n  $ omniqueue provision --prune --dry-run\n')
    .action(async (options: ProvisionCommandOptions, command: Command) => {
      exitCode = await runProvision({ ...options, configGiven: command.getOptionValueSource('config') === 'cli' }, io);
    });

  program
    .command('lambda-local')
    .summary('run a Lambda bundle against a queue, as the SQS event source mapping does')
    .description(
      'Poll an SQS queue (real or an emulator) the way Lambda\'s SQS event source mapping does (batch size, ' +
        'batching window, ReportBatchItemFailures) and invoke a built function bundle (npm run build:lambda) ' +
        'with real SQS events. Succeeded records are deleted; failed ones come back after their visibility timeout.',
    )
    .requiredOption('-q, --queue <url|name>', 'queue to poll')
    .requiredOption('--bundle <file>', 'built bundle (or module) exporting the handler')
    .option('--export <name>', 'export name of the handler', 'handler')
    .addOption(new Option('--batch-size <n>', 'records per invocation (BatchSize)').default(10).argParser(positiveInteger))
    .addOption(new Option('--window-ms <ms>', 'batching window (MaximumBatchingWindowInSeconds × 1000)').default(0).argParser(nonNegativeInteger))
    .addOption(new Option('--timeout-ms <ms>', 'function timeout; getRemainingTimeInMillis() counts down from it').default(30_000).argParser(positiveInteger))
    .addOption(new Option('--concurrency <n>', 'invocations at once (MaximumConcurrency)').default(1).argParser(positiveInteger))
    .option('--endpoint <url>', 'SQS endpoint, e.g. http://127.0.0.1:4566 for the emulator')
    .option('--region <region>', 'AWS region', process.env.AWS_REGION ?? 'us-east-1')
    .addHelpText('after', '\nExample:\n  $ npm run build:lambda -- --all\n  $ omniqueue lambda-local --queue orders-billing --bundle dist/functions/orders.billing.mjs --endpoint http://127.0.0.1:4566\n')
    .action(async (options: LambdaLocalCommandOptions) => {
      exitCode = await runLambdaLocal(options, io);
    });

  registerInfraCommand(program, io, (code) => {
    exitCode = code;
  });

  return { program, exitCode: () => exitCode };
}

/** Runs the command line (`argv` as in `process.argv`) and resolves with the exit code. */
export async function run(argv: readonly string[], io?: CliIo): Promise<number> {
  const { program, exitCode } = createProgram(io);
  try {
    await program.parseAsync([...argv]);
    return exitCode();
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every parse error (unknown option, missing argument …) is a usage error.
      return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    (io?.stderr ?? process.stderr).write(`omniqueue: error: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new InvalidArgumentError('must be an integer ≥ 1.');
  return parsed;
}

function nonNegativeInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError('must be an integer ≥ 0 (milliseconds).');
  return parsed;
}

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) throw new InvalidArgumentError('must be a port number 0–65535 (0 picks a free port).');
  return parsed;
}

function indent(text: string, spaces: number): string {
  return text
    .split('\n')
    .map((line) => ' '.repeat(spaces) + line)
    .join('\n');
}

function packageVersion(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++) {
    const candidate = join(directory, 'package.json');
    if (existsSync(candidate)) {
      const parsed = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'omniqueue' && parsed.version) return parsed.version;
    }
    directory = dirname(directory);
  }
  return '0.0.0';
}
