/**
 * How OmniQueue names map to Pulsar names.
 *
 * @packageDocumentation
 */

/** Where a topic lives: a Pulsar tenant and namespace. */
export interface PulsarNamespace {
  /** Pulsar tenant (default `public`). */
  readonly tenant: string;
  /** Pulsar namespace inside the tenant (default `default`). */
  readonly namespace: string;
}

/** The full persistent topic name: `persistent://tenant/namespace/topic`. */
export function persistentTopic(where: PulsarNamespace, topic: string): string {
  return `persistent://${where.tenant}/${where.namespace}/${topic}`;
}

/** The REST/WebSocket path segment of a topic: `persistent/tenant/namespace/topic` (URL-encoded parts). */
export function topicPath(where: PulsarNamespace, topic: string): string {
  return `persistent/${encodeURIComponent(where.tenant)}/${encodeURIComponent(where.namespace)}/${encodeURIComponent(topic)}`;
}

/**
 * The per-group retry topic that carries nacks with a delay longer than the native negative-ack
 * delay: Pulsar's own retry-letter convention, `<topic>-<subscription>-RETRY`. Only the group's
 * subscription reads it, so a delayed retry never reaches the topic's other groups.
 */
export function retryTopicName(topic: string, group: string): string {
  return `${topic}-${group}-RETRY`;
}
