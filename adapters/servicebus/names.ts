import { createHash } from 'node:crypto';

/** Longest topic name Service Bus accepts. */
export const MAX_TOPIC_NAME = 260;
/** Longest subscription name Service Bus accepts. */
export const MAX_SUBSCRIPTION_NAME = 50;

const PLAIN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/**
 * Maps a validated OmniQueue name (`[A-Za-z0-9._-]`, 1–200 chars) to a Service Bus entity name
 * (starts and ends with a letter or digit, at most `maxLength` chars). Names that already fit are
 * kept as they are; others keep a readable prefix and get an 8-hex-digit hash of the full name, so
 * two different names never share an entity. Service Bus names are case-insensitive: `Orders` and
 * `orders` are the same entity.
 */
export function serviceBusName(name: string, maxLength: number): string {
  if (name.length <= maxLength && PLAIN.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const core = name.replace(/^[^A-Za-z0-9]+/, '').slice(0, maxLength - hash.length - 1).replace(/[^A-Za-z0-9]+$/, '');
  return core.length > 0 ? `${core}-${hash}` : hash;
}

/** The Service Bus topic of an OmniQueue topic. */
export function topicEntity(topic: string): string {
  return serviceBusName(topic, MAX_TOPIC_NAME);
}

/** The Service Bus subscription of an OmniQueue group. */
export function subscriptionEntity(group: string): string {
  return serviceBusName(group, MAX_SUBSCRIPTION_NAME);
}
