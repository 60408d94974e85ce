import { createAdapter } from '../registry.js';
import { planTopology, applyPlan, formatPlan } from '../provision/provisionTopology.js';
import { loadTopology } from '../topology.js';
import { ensureAdapterRegistered } from '../worker/Worker.js';
import type { CliIo } from './program.js';
import { ExitCode, exitCodeOf } from './exitCode.js';
import { resolveConfigPath } from './resolveConfigPath.js';

/** Options of `omniqueue provision`, as parsed. */
export interface ProvisionCommandOptions {
  /** Topology file. */
  readonly config: string;
  /** Whether `--config` was given. */
  readonly configGiven?: boolean;
  /** Print the plan only. */
  readonly dryRun?: boolean;
  /** Delete what the topology no longer names. */
  readonly prune?: boolean;
}

/**
 * `omniqueue provision`: creates or updates on the topology's broker what its groups need (topics,
 * groups, dead-letter topics), printing the plan first. Idempotent; never deletes anything.
 */
export async function runProvision(options: ProvisionCommandOptions, io: CliIo): Promise<number> {
  try {
    if (options.prune) {
      io.stderr.write('omniqueue provision: --prune is not implemented yet: nothing was deleted, nothing was changed.\n');
      return ExitCode.Usage;
    }
    const topology = await loadTopology(resolveConfigPath(options.config, options.configGiven ?? false));
    const { name, ...settings } = topology.adapter;
    await ensureAdapterRegistered(name);
    const adapter = createAdapter(name, settings as never);
    await adapter.connect();
    try {
      const steps = await planTopology(adapter, topology);
      io.stdout.write(`${formatPlan(name, steps)}\n`);
      if (options.dryRun) {
        io.stdout.write('Dry run: nothing changed.\n');
        return ExitCode.Ok;
      }
      const applied = await applyPlan(adapter, steps);
      io.stdout.write(`Applied ${applied} of ${steps.length} resource sets.\n`);
      return ExitCode.Ok;
    } finally {
      await adapter.close();
    }
  } catch (error) {
    io.stderr.write(`omniqueue provision: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}
