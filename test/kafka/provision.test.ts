/** Provisioning plans on the real Kafka: create, unchanged, and more partitions as an update. */
import { afterAll, describe, expect, it } from 'vitest';
import { kafkaAvailable } from '../brokers/kafka.js';
import { fresh, plainKafka, testAdapter } from './kafkaTestKit.js';

const available = await kafkaAvailable();

describe.skipIf(!available)('Kafka provisioning plan', () => {
  const topic = fresh('provision');
  const adapter = testAdapter();
  afterAll(async () => {
    const admin = plainKafka().admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await adapter.close();
  });

  it('plans a create, then unchanged, then a partition increase that ensure applies', async () => {
    await adapter.connect();
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 2 } })).toEqual([{ action: 'create', resource: `topic ${topic}`, detail: '2 partitions' }]);
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 2 } })).toEqual([{ action: 'create', resource: `topic ${topic}`, detail: '2 partitions' }]);
    await adapter.ensure({ topic, createOptions: { numPartitions: 2 } });
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 2 } })).toEqual([{ action: 'unchanged', resource: `topic ${topic} (2 partitions)` }]);
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 4 } })).toEqual([{ action: 'update', resource: `topic ${topic}`, detail: 'partitions 2 → 4' }]);
    const second = testAdapter();
    await second.connect();
    await second.ensure({ topic, createOptions: { numPartitions: 4 } });
    await second.close();
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 4 } })).toEqual([{ action: 'unchanged', resource: `topic ${topic} (4 partitions)` }]);
  });
});
