/**
 * Reads a queue's counters through Artemis's management address, the way an operator's tool does,
 * so tests can check that a group's queue was left empty (everything settled).
 *
 * @packageDocumentation
 */
import { Connection, type ConnectionOptions } from 'rhea-promise';
import { ArtemisManagement } from '../../adapters/artemis/ArtemisManagement.js';
import { queueName } from '../../adapters/artemis/names.js';
import { DEAD_LETTER_GROUP, deadLetterTopicOf } from '../../runtime/Broker.js';
import { ARTEMIS } from '../brokers/artemis.js';

/** Messages still in queue `name` (`messageCount`) and handed out but unsettled (`deliveringCount`); undefined when it does not exist. */
export async function queueStats(name: string): Promise<{ messageCount: number; deliveringCount: number } | undefined> {
  const connection = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false } as ConnectionOptions);
  await connection.open();
  try {
    const management = new ArtemisManagement(connection);
    const messages = await management.attribute(`queue.${name}`, 'messageCount');
    if (!messages.found) return undefined;
    const delivering = await management.attribute(`queue.${name}`, 'deliveringCount');
    return { messageCount: Number(messages.value), deliveringCount: Number(delivering.value) };
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Deletes queues (and their addresses when nothing else is bound) left by a test run; errors are ignored. */
export async function deleteArtemisQueues(queues: readonly string[]): Promise<void> {
  if (queues.length === 0) return;
  const connection = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false } as ConnectionOptions);
  await connection.open();
  try {
    const management = new ArtemisManagement(connection);
    for (const queue of queues) await management.request({ _AMQ_ResourceName: 'broker', _AMQ_OperationName: 'destroyQueue' }, [queue, true, true]).catch(() => {});
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Deletes addresses left by a test run (with `force`, their queues too); errors are ignored. */
export async function deleteArtemisAddresses(addresses: readonly string[]): Promise<void> {
  if (addresses.length === 0) return;
  const connection = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false } as ConnectionOptions);
  await connection.open();
  try {
    const management = new ArtemisManagement(connection);
    for (const address of addresses) await management.request({ _AMQ_ResourceName: 'broker', _AMQ_OperationName: 'deleteAddress' }, [address, true]).catch(() => {});
  } finally {
    await connection.close().catch(() => {});
  }
}

/** The queues a subscription of `group` on `topic` makes: the group's own and its dead-letter topic's. */
export function subscriptionQueues(topic: string, group: string): string[] {
  return [queueName(topic, group), queueName(deadLetterTopicOf(topic, group), DEAD_LETTER_GROUP)];
}
