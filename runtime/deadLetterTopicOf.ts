/** Group that every dead-letter topic gets, so dead letters are kept until someone reads them. */
export const DEAD_LETTER_GROUP = 'dlq';

/** Default dead-letter topic of a group: `<topic>.<group>.dlq`. */
export function deadLetterTopicOf(topic: string, group: string): string {
  return `${topic}.${group}.dlq`;
}
