import type { Level } from 'pino';
import { loadTopology } from '../topology.js';
import { createLogger } from '../worker/createLogger.js';
import { Worker } from '../worker/Worker.js';
import type { CliIo } from './program.js';
import { ExitCode, exitCodeOf } from './exitCode.js';
import { resolveConfigPath } from './resolveConfigPath.js';

/** Options of `omniqueue worker`, as parsed. */
export interface WorkerCommandOptions {
  /** Topology file. */
  readonly config: string;
  /** Whether `--config` was given (else the default file names are searched). */
  readonly configGiven?: boolean;
  /** Group filters. */
  readonly group?: readonly string[];
  /** HTTP port (0 = random). */
  readonly port: number;
  /** HTTP bind address. */
  readonly host: string;
  /** Drain timeout in ms. */
  readonly drainTimeout: number;
  /** pino level. */
  readonly logLevel: Level | 'silent';
}

/**
 * `omniqueue worker`: loads the topology, starts the {@link Worker} with signal handling and
 * resolves with exit code 0 once a SIGTERM/SIGINT shutdown has finished.
 */
export async function runWorker(options: WorkerCommandOptions, io: CliIo): Promise<number> {
  const logger = createLogger(options.logLevel);
  let worker: Worker;
  try {
    const configPath = resolveConfigPath(options.config, options.configGiven ?? false);
    const topology = await loadTopology(configPath);
    worker = new Worker({
      topology,
      groups: options.group,
      port: options.port,
      host: options.host,
      drainTimeoutMs: options.drainTimeout,
      logger,
      handleSignals: true,
    });
    if (topology.adapter.name === 'memory') {
      logger.info(
        { adapter: 'memory', config: configPath },
        'memory adapter: in-process only; messages must be published inside this process (the topology\'s onReady hook), `omniqueue publish` cannot reach this worker',
      );
    }
    await worker.start();
  } catch (error) {
    io.stderr.write(`omniqueue worker: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
  await worker.stopped;
  return ExitCode.Ok;
}
