/** Artemis queue of a group: `<topic>.<group>`, bound to the multicast address `<topic>`. */
export function queueName(topic: string, group: string): string {
  return `${topic}.${group}`;
}

/** Fully-qualified queue name (`address::queue`) a receiver attaches to and a retry is sent to. */
export function fqqn(topic: string, group: string): string {
  return `${topic}::${queueName(topic, group)}`;
}
