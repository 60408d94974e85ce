import { createAdapter } from '../registry.js';
import { applyPlan, applyPrune, formatPlan, planPrune, planTopology } from '../provision/provisionTopology.js';
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
  /** Also delete, on the declared topics, the groups the topology does not declare. */
  readonly prune?: boolean;
}

/**
 * `omniqueue provision`: creates or updates on the topology's broker what its groups need (topics,
 * groups, dead-letter topics), printing the plan first. Idempotent; never deletes anything without
 * `--prune`.
 *
 * With `--prune` it also deletes, on each topic the topology declares, the groups that exist on the
 * broker but are not declared for that topic (with what exists only for them, such as a Kafka retry
 * topic); the plan shows them as `- delete`. It is all or nothing up front: when the adapter cannot
 * list groups (no `planPrune`/`prune`), or when a group to delete still has consumers (`! blocked`),
 * the command changes nothing at all, not even the creates, and exits 2 resp. 1. A group whose
 * consumers connect after the plan was made is reported and left; the other deletions go on and the
 * command exits 1 (run it again once the consumers are gone).
 */
export async function runProvision(options: ProvisionCommandOptions, io: CliIo): Promise<number> {
  try {
    const topology = await loadTopology(resolveConfigPath(options.config, options.configGiven ?? false));
    const { name, ...settings } = topology.adapter;
    await ensureAdapterRegistered(name);
    const adapter = createAdapter(name, settings as never);
    if (options.prune && (!adapter.planPrune || !adapter.prune)) {
      io.stderr.write(
        `omniqueue provision: --prune is not supported by the '${name}' adapter: it cannot list the groups that exist on the broker, ` +
          'so it cannot tell which ones the topology no longer declares. Nothing was deleted, nothing was changed; run without --prune to create and update only.\n',
      );
      await adapter.close();
      return ExitCode.Usage;
    }
    await adapter.connect();
    try {
      const steps = await planTopology(adapter, topology);
      const prunes = options.prune ? await planPrune(adapter, topology) : undefined;
      io.stdout.write(`${formatPlan(name, steps, prunes)}\n`);
      const blocked = prunes?.filter((prune) => prune.blockedBy !== undefined) ?? [];
      if (blocked.length > 0) {
        io.stderr.write(
          `omniqueue provision: ${blocked.length} group(s) cannot be deleted now (${blocked.map((prune) => `${prune.topic} / ${prune.group}: ${prune.blockedBy}`).join('; ')}). ` +
            'Nothing was deleted, nothing was changed.\n',
        );
        return ExitCode.Failure;
      }
      if (options.dryRun) {
        io.stdout.write('Dry run: nothing changed.\n');
        return ExitCode.Ok;
      }
      const applied = await applyPlan(adapter, steps);
      io.stdout.write(`Applied ${applied} of ${steps.length} resource sets.\n`);
      if (!prunes) return ExitCode.Ok;
      const { deleted, failures } = await applyPrune(adapter, prunes);
      io.stdout.write(`Deleted ${deleted} of ${prunes.length} groups.\n`);
      for (const { target, error } of failures) {
        io.stderr.write(`omniqueue provision: group ${target.topic} / ${target.group} was not deleted: ${error instanceof Error ? error.message : String(error)}\n`);
      }
      return failures.length > 0 ? ExitCode.Failure : ExitCode.Ok;
    } finally {
      await adapter.close();
    }
  } catch (error) {
    io.stderr.write(`omniqueue provision: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeOf(error);
  }
}
