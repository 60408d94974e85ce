import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { GroupRuntime, loadTopology } from '../topology.js';
import { ExitCode, exitCodeOf } from './exitCode.js';
import type { CliIo } from './program.js';
import { resolveConfigPath } from './resolveConfigPath.js';

/** Options shared by the `omniqueue infra` subcommands, as parsed. */
export interface InfraCommonOptions {
  /** Topology file. */
  readonly config: string;
  /** `--config` was given on the command line. */
  readonly configGiven?: boolean;
  /** Runtime overrides (`topic/group=runtime`). */
  readonly runtime?: Readonly<Record<string, GroupRuntime>>;
}

/** Options of `omniqueue infra azure`. */
export interface InfraAzureOptions extends InfraCommonOptions {
  /** Output directory. */
  readonly out: string;
  /** Connection app-setting prefix. */
  readonly connection: string;
  /** Messages per invocation. */
  readonly cardinality: 'one' | 'many';
  /** SDK-type bindings. */
  readonly sdkBinding?: boolean;
}

/** Options of `omniqueue infra keda`. */
export interface InfraKedaOptions extends InfraCommonOptions {
  /** Output file, `-` for stdout. */
  readonly out: string;
  /** Kubernetes namespace. */
  readonly namespace?: string;
  /** Secret with the broker credentials. */
  readonly secret: string;
  /** Backlog per replica. */
  readonly target?: number;
  /** Minimum replicas. */
  readonly minReplicas: number;
  /** Maximum replicas. */
  readonly maxReplicas: number;
  /** Extra trigger metadata (`key=value`). */
  readonly metadata?: Readonly<Record<string, string>>;
}

const INFRA_HELP = `
Examples:
  $ omniqueue infra azure --config examples/orders/omniqueue.config.ts --runtime orders/billing=azure --out infra/azure
      main.bicep (Service Bus namespace, topics, subscriptions, Function App), host.json and
      src/functions/orders.billing.ts importing the billing handler module
  $ omniqueue infra keda --config omniqueue.config.ts --namespace shop --out keda.yaml
      one KEDA ScaledObject per worker group, with the scaler of the topology's adapter

The AWS output is a CDK construct, not a command: see OmniQueueTopology in 'omniqueue/infra'
(examples/orders/infra/app.ts).
`;

/**
 * Registers `omniqueue infra azure` and `omniqueue infra keda` on the program. The generators are
 * loaded only when a subcommand runs (the KEDA one needs the optional `yaml` package).
 */
export function registerInfraCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const infra = program
    .command('infra')
    .summary('write deployment files for the topology (Azure Bicep + Functions, KEDA)')
    .description('Write deployment files generated from the topology file: Azure (Bicep and Functions entry files) or KEDA ScaledObjects.')
    .addHelpText('after', INFRA_HELP);

  const common = (command: Command): Command =>
    command
      .option('-c, --config <file>', 'topology file', 'omniqueue.config.ts')
      .addOption(new Option('-r, --runtime <topic/group=runtime>', 'run a group on another runtime in this deployment (repeatable)').argParser(collectRuntime));

  common(
    infra
      .command('azure')
      .summary('Bicep for Service Bus + Function App, and a Functions entry file per Azure group')
      .description(
        'Write main.bicep (Service Bus namespace, topics, subscriptions with maxDeliveryCount = retry.maxAttempts + 1 and\n' +
          'dead-lettering, a Flex Consumption Function App with identity-based connections), host.json, and\n' +
          'src/functions/<topic>.<group>.ts for every group whose runtime is azure.',
      ),
  )
    .option('-o, --out <dir>', 'output directory', 'infra/azure')
    .option('--connection <name>', 'app setting prefix of the Service Bus connection', 'ServiceBusConnection')
    .addOption(new Option('--cardinality <one|many>', 'messages per invocation').choices(['one', 'many']).default('one'))
    .option('--sdk-binding', 'SDK-type bindings: settle each message from its verdict (dead-letter at once)')
    .action(async (options: InfraAzureOptions, command: Command) => {
      setExitCode(await runInfraAzure({ ...options, configGiven: command.getOptionValueSource('config') === 'cli' }, io));
    });

  common(
    infra
      .command('keda')
      .summary('a KEDA ScaledObject per worker group')
      .description('Write one KEDA ScaledObject per worker group (and the TriggerAuthentication its scaler needs), using the scaler of the topology\'s adapter.'),
  )
    .option('-o, --out <file>', 'output file, - for stdout', 'infra/keda/scaledobjects.yaml')
    .option('-n, --namespace <namespace>', 'Kubernetes namespace of the objects')
    .option('--secret <name>', 'Kubernetes Secret with the broker credentials', 'omniqueue-broker')
    .addOption(new Option('--target <n>', 'backlog per replica (default: the group\'s concurrency)').argParser(positiveInteger))
    .addOption(new Option('--min-replicas <n>', 'minReplicaCount').default(0).argParser(nonNegativeInteger))
    .addOption(new Option('--max-replicas <n>', 'maxReplicaCount').default(10).argParser(positiveInteger))
    .addOption(new Option('-m, --metadata <key=value>', 'extra trigger metadata (repeatable)').argParser(collectPair))
    .action(async (options: InfraKedaOptions, command: Command) => {
      setExitCode(await runInfraKeda({ ...options, configGiven: command.getOptionValueSource('config') === 'cli' }, io));
    });
}

/** `omniqueue infra azure`: writes the files and lists them; resolves with the exit code. */
export async function runInfraAzure(options: InfraAzureOptions, io: CliIo): Promise<number> {
  try {
    const configPath = resolveConfigPath(options.config, options.configGiven ?? false);
    const topology = await loadTopology(configPath);
    const { generateAzure } = await import('../../infra/bicep/generateAzure.js');
    const outdir = resolve(options.out);
    const result = generateAzure(topology, {
      outdir,
      runtimes: options.runtime,
      connection: options.connection,
      cardinality: options.cardinality,
      sdkBinding: options.sdkBinding,
      source: configPath,
    });
    for (const file of result.files) {
      const target = join(outdir, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.contents);
      io.stdout.write(`wrote ${relative(process.cwd(), target) || target}\n`);
    }
    if (result.functionGroups.length === 0) {
      io.stderr.write('note: no group runs on azure, so no Function App or entry file was generated (use --runtime topic/group=azure).\n');
    }
    return ExitCode.Ok;
  } catch (error) {
    io.stderr.write(`omniqueue infra azure: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}

/** `omniqueue infra keda`: writes the manifests (or prints them); resolves with the exit code. */
export async function runInfraKeda(options: InfraKedaOptions, io: CliIo): Promise<number> {
  try {
    const configPath = resolveConfigPath(options.config, options.configGiven ?? false);
    const topology = await loadTopology(configPath);
    const { generateKeda } = await import('../../infra/keda/generateKeda.js');
    const result = await generateKeda(topology, {
      runtimes: options.runtime,
      namespace: options.namespace,
      secretName: options.secret,
      target: options.target,
      minReplicaCount: options.minReplicas,
      maxReplicaCount: options.maxReplicas,
      metadata: options.metadata,
    });
    const scaled = result.objects.filter((object) => object.kind === 'ScaledObject').length;
    if (options.out === '-') {
      io.stdout.write(result.yaml);
    } else {
      const target = resolve(options.out);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, result.yaml);
      io.stdout.write(`wrote ${relative(process.cwd(), target) || target}: ${scaled} ScaledObject(s), scaler ${result.scaler}\n`);
    }
    if (scaled === 0) io.stderr.write('note: no group runs on the worker, so no ScaledObject was generated.\n');
    return ExitCode.Ok;
  } catch (error) {
    io.stderr.write(`omniqueue infra keda: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}

function collectRuntime(value: string, previous: Record<string, GroupRuntime> | undefined): Record<string, GroupRuntime> {
  const match = /^([^=]+\/[^=]+)=(.+)$/.exec(value);
  const runtimes: readonly string[] = Object.values(GroupRuntime);
  if (!match || !runtimes.includes(match[2]!)) throw new InvalidArgumentError(`expected topic/group=${runtimes.join('|')}, got '${value}'.`);
  return { ...previous, [match[1]!]: match[2] as GroupRuntime };
}

function collectPair(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const at = value.indexOf('=');
  if (at < 1) throw new InvalidArgumentError(`expected key=value, got '${value}'.`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new InvalidArgumentError('must be an integer ≥ 1.');
  return parsed;
}

function nonNegativeInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError('must be an integer ≥ 0.');
  return parsed;
}
