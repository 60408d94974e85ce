import { DEAD_LETTER_GROUP, deadLetterTopicOf } from '../Broker.js';
import type { Adapter, EnsureRequest, GroupPrune, TopologyChange } from '../contract.js';
import { UnsupportedFeatureError } from '../errors.js';
import { resolveRetryPolicy } from '../pipeline/retry.js';
import type { LoadedTopology } from '../topology.js';

/** One resource set of the topology (a group, or a dead-letter topic) and what ensuring it would change. */
export interface ProvisionStep {
  /** What `ensure` is asked to create. */
  readonly request: EnsureRequest;
  /** The changes, or `undefined` when the adapter cannot tell before acting (its `ensure` is idempotent). */
  readonly changes: readonly TopologyChange[] | undefined;
}

/** Everything a topology needs on its broker: each group with its retry policy, and each group's dead-letter topic. */
export function desiredRequests(topology: LoadedTopology): EnsureRequest[] {
  const requests: EnsureRequest[] = [];
  for (const group of topology.groups) {
    const retry = resolveRetryPolicy(group.config.retry);
    requests.push({ topic: group.topic, group: group.group, createOptions: group.createOptions, retry: { maxAttempts: retry.maxAttempts, maxDelayMs: retry.maxDelayMs } });
    requests.push({ topic: group.config.deadLetter?.topic ?? deadLetterTopicOf(group.topic, group.group), group: DEAD_LETTER_GROUP });
  }
  return requests;
}

/** Asks the adapter what each request would change; changes nothing. */
export async function planTopology(adapter: Adapter, topology: LoadedTopology): Promise<ProvisionStep[]> {
  const steps: ProvisionStep[] = [];
  for (const request of desiredRequests(topology)) {
    steps.push({ request, changes: adapter.plan ? await adapter.plan(request) : undefined });
  }
  return steps;
}

/** Ensures every step that is not entirely unchanged; returns how many were applied. */
export async function applyPlan(adapter: Adapter, steps: readonly ProvisionStep[]): Promise<number> {
  let applied = 0;
  for (const step of steps) {
    if (step.changes && step.changes.every((change) => change.action === 'unchanged')) continue;
    await adapter.ensure(step.request);
    applied++;
  }
  return applied;
}

/**
 * Where `--prune` looks: every topic the topology file declares under `topics`, each with the groups
 * the topology keeps on it (its declared groups, plus the reserved dead-letter group when the topic
 * is also some group's dead-letter topic). Dead-letter topics the topology only derives are not in
 * scope: tools that read dead letters keep their groups there.
 */
export function pruneScope(topology: LoadedTopology): { readonly topic: string; readonly keepGroups: readonly string[] }[] {
  const requests = desiredRequests(topology);
  return Object.keys(topology.config.topics).map((topic) => ({
    topic,
    keepGroups: [...new Set(requests.filter((request) => request.topic === topic && request.group !== undefined).map((request) => request.group!))],
  }));
}

/** Asks the adapter which undeclared groups of the declared topics `--prune` would delete; changes nothing. */
export async function planPrune(adapter: Adapter, topology: LoadedTopology): Promise<GroupPrune[]> {
  if (!adapter.planPrune) throw new UnsupportedFeatureError(adapter.name, 'pruning (it cannot list the groups that exist on the broker)');
  const prunes: GroupPrune[] = [];
  for (const { topic, keepGroups } of pruneScope(topology)) prunes.push(...(await adapter.planPrune(topic, keepGroups)));
  return prunes;
}

/** One group `applyPrune` could not delete, and why. */
export interface PruneFailure {
  /** The group that is still there. */
  readonly target: GroupPrune;
  /** Why (`GroupInUseError` when consumers connected after the plan was made). */
  readonly error: unknown;
}

/**
 * Deletes every planned group, each on its own: a failure is recorded and the others go on (each
 * deletion is independent and idempotent, so running again after fixing the cause finishes the job).
 */
export async function applyPrune(adapter: Adapter, prunes: readonly GroupPrune[]): Promise<{ readonly deleted: number; readonly failures: readonly PruneFailure[] }> {
  if (prunes.length > 0 && !adapter.prune) throw new UnsupportedFeatureError(adapter.name, 'pruning');
  let deleted = 0;
  const failures: PruneFailure[] = [];
  for (const target of prunes) {
    try {
      await adapter.prune!(target);
      deleted++;
    } catch (error) {
      failures.push({ target, error });
    }
  }
  return { deleted, failures };
}

/**
 * The plan as text, one resource a line: `+ create`, `~ update`, `= unchanged`, `? ensure` (adapter
 * cannot tell) and, with `prunes`, `- delete` (or `! blocked` for a group that cannot be deleted now).
 */
export function formatPlan(adapterName: string, steps: readonly ProvisionStep[], prunes?: readonly GroupPrune[]): string {
  const lines = [`Plan for ${adapterName}:`];
  const counts = { create: 0, update: 0, unchanged: 0, delete: 0, unknown: 0, blocked: 0 };
  const line = (mark: string, action: string, resource: string, detail: string | undefined): void => {
    lines.push(`  ${mark} ${action.padEnd(10)} ${resource}${detail ? `  (${detail})` : ''}`);
  };
  for (const step of steps) {
    const target = `${step.request.topic}${step.request.group ? ` / ${step.request.group}` : ''}`;
    if (!step.changes) {
      counts.unknown++;
      lines.push(`  ? ensure     ${target} (the adapter cannot tell before acting; ensure is idempotent)`);
      continue;
    }
    for (const change of step.changes) {
      counts[change.action]++;
      line(MARKS[change.action], change.action, change.resource, change.detail);
    }
  }
  for (const prune of prunes ?? []) {
    if (prune.blockedBy !== undefined) counts.blocked++;
    for (const change of prune.changes) {
      if (prune.blockedBy !== undefined) line('!', 'blocked', change.resource, `not deleted: ${prune.blockedBy}`);
      else {
        counts.delete++;
        line('-', 'delete', change.resource, change.detail);
      }
    }
  }
  const pruned = prunes ? `, ${counts.delete} to delete${counts.blocked ? `, ${counts.blocked} group${counts.blocked === 1 ? '' : 's'} blocked` : ''}` : '';
  lines.push(`${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged${pruned}${counts.unknown ? `, ${counts.unknown} to ensure` : ''}.`);
  return lines.join('\n');
}

const MARKS: Readonly<Record<TopologyChange['action'], string>> = { create: '+', update: '~', unchanged: '=', delete: '-' };
