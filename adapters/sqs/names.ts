/**
 * Maps OmniQueue names (`[A-Za-z0-9._-]`, 1–200 chars) to SNS topic and SQS queue names
 * (`[A-Za-z0-9_-]`; topics ≤ 256, queues ≤ 80 characters, FIFO ones ending in `.fifo`).
 *
 * `.` becomes `_`. A queue name longer than SQS allows is cut and given an 8-character hash of the
 * full name, so it stays unique. Names that differ only by `.` versus `_` map to the same native
 * name: avoid mixing both in one account.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';

/** Suffix SQS and SNS require on FIFO names. */
export const FIFO_SUFFIX = '.fifo';
const MAX_QUEUE_NAME = 80;
const MAX_TOPIC_NAME = 256;

/** The SNS topic name of an OmniQueue topic. */
export function snsTopicName(topic: string, fifo: boolean): string {
  return fit(sanitise(topic), MAX_TOPIC_NAME, fifo);
}

/** The SQS queue name of group `group` on `topic`: `<topic>-<group>`. */
export function sqsQueueName(topic: string, group: string, fifo: boolean): string {
  return fit(`${sanitise(topic)}-${sanitise(group)}`, MAX_QUEUE_NAME, fifo);
}

/** The queue name from an ARN (`arn:aws:sqs:region:account:name`) or a queue URL. */
export function queueNameOf(arnOrUrl: string): string {
  const separator = arnOrUrl.startsWith('arn:') ? ':' : '/';
  return arnOrUrl.slice(arnOrUrl.lastIndexOf(separator) + 1);
}

function sanitise(name: string): string {
  return name.replace(/\./g, '_');
}

function fit(name: string, max: number, fifo: boolean): string {
  const room = max - (fifo ? FIFO_SUFFIX.length : 0);
  const fitted = name.length <= room ? name : `${name.slice(0, room - 9)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
  return fifo ? fitted + FIFO_SUFFIX : fitted;
}
