import { createHash } from 'node:crypto';

/** Longest topic name Kafka accepts. */
export const KAFKA_MAX_TOPIC_LENGTH = 249;

/**
 * The retry topic of a group: `<topic>.<group>.retry`. Nacked and delayed messages of the group wait
 * there until they are due. Names longer than Kafka's 249 characters are shortened to
 * `<start of topic>.<hash of topic and group>.retry`, stable for the same pair.
 */
export function retryTopicName(topic: string, group: string): string {
  const plain = `${topic}.${group}.retry`;
  if (plain.length <= KAFKA_MAX_TOPIC_LENGTH) return plain;
  const hash = createHash('sha256').update(topic).update('\u0000').update(group).digest('hex').slice(0, 24);
  return `${topic.slice(0, KAFKA_MAX_TOPIC_LENGTH - hash.length - '..retry'.length)}.${hash}.retry`;
}
