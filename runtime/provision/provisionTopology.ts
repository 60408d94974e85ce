import { DEAD_LETTER_GROUP, deadLetterTopicOf } from '../Broker.js';
import type { Adapter, EnsureRequest, TopologyChange } from '../contract.js';
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

/** The plan as text, one resource a line: `+ create`, `~ update`, `= unchanged`, `? ensure` (adapter cannot tell). */
export function formatPlan(adapterName: string, steps: readonly ProvisionStep[]): string {
  const lines = [`Plan for ${adapterName}:`];
  const counts = { create: 0, update: 0, unchanged: 0, unknown: 0 };
  for (const step of steps) {
    const target = `${step.request.topic}${step.request.group ? ` / ${step.request.group}` : ''}`;
    if (!step.changes) {
      counts.unknown++;
      lines.push(`  ? ensure     ${target} (the adapter cannot tell before acting; ensure is idempotent)`);
      continue;
    }
    for (const change of step.changes) {
      counts[change.action]++;
      const mark = change.action === 'create' ? '+' : change.action === 'update' ? '~' : '=';
      lines.push(`  ${mark} ${change.action.padEnd(10)} ${change.resource}${change.detail ? `  (${change.detail})` : ''}`);
    }
  }
  lines.push(`${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged${counts.unknown ? `, ${counts.unknown} to ensure` : ''}.`);
  return lines.join('\n');
}
