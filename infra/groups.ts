/**
 * Helpers shared by the infrastructure generators (CDK, Bicep, KEDA): how a group is keyed and
 * where it runs once a deployment overrides the topology's `runtime`.
 *
 * @packageDocumentation
 */
import { ConfigError } from '../runtime/errors.js';
import { DEFAULT_RETRY_POLICY } from '../runtime/pipeline/retry.js';
import { GroupRuntime, type LoadedTopology, type ResolvedGroup } from '../runtime/topology.js';

/**
 * The key of a group in every map the generators take or return: `topic/group`. `/` never appears
 * in a topic or group name, so the key is unambiguous (names may contain `.`).
 */
export function groupKey(topic: string, group: string): string {
  return `${topic}/${group}`;
}

/**
 * Per-deployment runtime overrides, keyed by {@link groupKey} (`orders/notifications`): run a group
 * on another runtime in this deployment without editing the topology file.
 */
export type RuntimeOverrides = Readonly<Record<string, GroupRuntime>>;

/** Where `group` runs in this deployment: the override when one is given, else the topology's runtime. */
export function effectiveRuntime(group: ResolvedGroup, overrides: RuntimeOverrides | undefined): GroupRuntime {
  return overrides?.[groupKey(group.topic, group.group)] ?? group.runtime;
}

/** Checks that every override names a group of the topology and a known runtime. */
export function checkOverrides(topology: LoadedTopology, overrides: RuntimeOverrides | undefined): void {
  if (!overrides) return;
  const known = new Set(topology.groups.map((group) => groupKey(group.topic, group.group)));
  const runtimes: readonly string[] = Object.values(GroupRuntime);
  for (const [key, runtime] of Object.entries(overrides)) {
    if (!known.has(key)) throw new ConfigError(`Runtime override '${key}': no such group in the topology (known: ${[...known].join(', ')}). Keys are 'topic/group'.`);
    if (!runtimes.includes(runtime)) throw new ConfigError(`Runtime override '${key}': must be one of ${runtimes.join(', ')}, got '${String(runtime)}'.`);
  }
}

/** The retry policy's `maxAttempts` of a group (runtime default 5). */
export function maxAttemptsOf(group: ResolvedGroup): number {
  return group.config.retry?.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts;
}

/**
 * The broker-side delivery limit of a group: `maxAttempts + 1`, as every adapter sets it (SQS redrive
 * `maxReceiveCount`, Service Bus `maxDeliveryCount`). The runtime sees attempt `maxAttempts` first and
 * dead-letters with a reason; the broker limit only catches consumers that died on every attempt.
 */
export function deliveryLimitOf(group: ResolvedGroup): number {
  return maxAttemptsOf(group) + 1;
}
