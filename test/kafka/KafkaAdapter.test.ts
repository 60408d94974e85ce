/**
 * Kafka-specific behaviour of the adapter on the real broker: topic creation options, publish
 * acknowledgement, offsets committed only for settled messages (in order, with prefetch > 1), the
 * emulated delay through the group's retry topic, and rebalances that neither lose nor double-ack.
 */
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaHeader } from '../../adapters/kafka/KafkaConsumption.js';
import { retryTopicName } from '../../adapters/kafka/retryTopicName.js';
import type { Broker } from '../../runtime/Broker.js';
import { ConfigError, PayloadTooLargeError } from '../../runtime/errors.js';
import { nack, type Message } from '../../runtime/message.js';
import { WireHeader } from '../../runtime/wire.js';
import { kafkaAvailable } from '../brokers/kafka.js';
import { pause, waitFor } from '../conformance/waitFor.js';
import { committedOffsets, fresh, plainKafka, testBroker } from './kafkaTestKit.js';

const available = await kafkaAvailable();

describe.skipIf(!available)('Kafka adapter on a real broker', () => {
  let admin: Admin;
  const brokers: Broker[] = [];
  const open = async (...args: Parameters<typeof testBroker>): Promise<Broker> => {
    const broker = await testBroker(...args);
    brokers.push(broker);
    return broker;
  };

  beforeAll(async () => {
    admin = plainKafka('kafka-adapter-test-admin').admin();
    await admin.connect();
  });
  afterAll(async () => {
    await Promise.allSettled(brokers.map((broker) => broker.close({ drainTimeoutMs: 1_000 })));
    await admin?.disconnect();
  });

  it('ensure creates the topic with createOptions (partitions, configs) and is idempotent; unknown options are refused', async () => {
    const broker = await open();
    const topic = fresh('ensure');
    const createOptions = { numPartitions: 3, replicationFactor: 1, configEntries: { 'retention.ms': '3600000', 'cleanup.policy': 'delete' } };
    await broker.publish(topic, { body: 1 }, { ensure: true, createOptions });
    await broker.publish(topic, { body: 2 }, { ensure: true, createOptions });
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(metadata.topics[0]!.partitions).toHaveLength(3);
    const configs = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }], includeSynonyms: false });
    expect(configs.resources[0]!.configEntries.find((entry) => entry.configName === 'retention.ms')?.configValue).toBe('3600000');
    await expect(broker.publish(fresh('bad'), { body: 1 }, { ensure: true, createOptions: { partitions: 3 } })).rejects.toBeInstanceOf(ConfigError);
  });

  it('publish resolves only once the record is in the log; an oversized payload is refused before sending', async () => {
    const broker = await open();
    const topic = fresh('acked');
    await broker.publish(topic, { body: 'first' }, { ensure: true, createOptions: { numPartitions: 1 } });
    for (let i = 1; i <= 5; i++) {
      await broker.publish(topic, { body: { i }, key: 'k' });
      const [end] = await admin.fetchTopicOffsets(topic);
      expect(Number(end!.high)).toBe(i + 1);
    }
    await expect(broker.publish(topic, { body: new Uint8Array(1_000_001) })).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it('commits only the contiguous settled offset with prefetch > 1: an open message holds the commit back', async () => {
    const broker = await open();
    const topic = fresh('commit');
    const group = fresh('g');
    await broker.publish(topic, { body: 'warmup' }, { ensure: true, createOptions: { numPartitions: 1 } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const acked: number[] = [];
    let handed = 0;
    await broker.subscribe<{ i: number } | string>(
      topic,
      async (message) => {
        handed++;
        if (message.body === 'warmup') return;
        const { i } = message.body as { i: number };
        if (i === 0) await gate;
        acked.push(i);
      },
      group,
      { ensure: true, concurrency: 8 },
    );
    await waitFor(() => handed >= 1, 15_000, 'the warm-up message');
    expect(await committedWithin(admin, group, topic, 1, 5_000), 'warm-up committed').toBe(1);

    for (let i = 0; i < 10; i++) await broker.publish(topic, { body: { i } });
    await waitFor(() => acked.length === 9, 15_000, () => `9 acks besides the held message, got ${acked.length}`);
    await pause(500);
    expect((await committedOffsets(admin, group, topic)).get(0), 'nothing committed past the open message').toBe(1);

    release();
    await waitFor(() => acked.length === 10, 5_000, 'the held message');
    expect(await committedWithin(admin, group, topic, 11, 5_000), 'everything committed once the held message settled').toBe(11);
  });

  it('nack(delay) re-publishes to <topic>.<group>.retry with attempt + 1 and not-before, commits the original only after that, and redelivers no sooner than the delay', async () => {
    const broker = await open();
    const topic = fresh('delay');
    const group = fresh('g');
    const delayMs = 1_500;
    const seen: { attempt: number; at: number; headers: Readonly<Record<string, string>> }[] = [];
    await broker.subscribe(
      topic,
      (message: Message) => {
        seen.push({ attempt: message.attempt, at: Date.now(), headers: message.headers });
        if (message.attempt === 1) return nack({ delayMs });
      },
      group,
      { ensure: true, createOptions: { numPartitions: 1 } },
    );
    const { id } = await broker.publish(topic, { body: { x: 1 }, headers: { 'x-origin': 'test' } });
    await waitFor(() => seen.length >= 1, 15_000, 'first delivery');
    const retryTopic = retryTopicName(topic, group);
    expect(retryTopic).toBe(`${topic}.${group}.retry`);

    // The retry copy is in the retry topic, with native headers a plain client can read.
    const reader = plainKafka('retry-reader').consumer({ groupId: fresh('reader'), sessionTimeout: 6_000, heartbeatInterval: 300 });
    const copies: Record<string, string>[] = [];
    await reader.connect();
    await reader.subscribe({ topic: retryTopic, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        copies.push(Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)])));
      },
    });
    await waitFor(() => copies.length >= 1, 15_000, 'the retry copy');
    await reader.disconnect();
    expect(copies[0]![WireHeader.Id]).toBe(id);
    expect(copies[0]![WireHeader.Attempt]).toBe('2');
    expect(Number(copies[0]![KafkaHeader.NotBefore])).toBeGreaterThanOrEqual(seen[0]!.at + delayMs - 50);
    expect(copies[0]!['x-origin']).toBe('test');
    expect(await committedWithin(admin, group, topic, 1, 5_000), 'the original is committed once its copy is acknowledged').toBe(1);

    await waitFor(() => seen.length >= 2, 15_000, 'the redelivery');
    expect(seen[1]!.attempt).toBe(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(delayMs - 20);
    expect(seen[1]!.headers, 'the adapter header is not shown to handlers').not.toHaveProperty(KafkaHeader.NotBefore);
    expect(seen[1]!.headers['x-origin']).toBe('test');
  });

  it('a delayed publish is held back for every group without blocking later messages', async () => {
    const broker = await open();
    const topic = fresh('delaypub');
    const group = fresh('g');
    const seen: { body: unknown; at: number }[] = [];
    await broker.subscribe(topic, (message) => void seen.push({ body: message.body, at: Date.now() }), group, { ensure: true, createOptions: { numPartitions: 1 } });
    const start = Date.now();
    await broker.publish(topic, { body: 'late' }, { delayMs: 1_200 });
    await broker.publish(topic, { body: 'now' });
    await waitFor(() => seen.length >= 2, 15_000, 'both messages');
    expect(seen.map((entry) => entry.body)).toEqual(['now', 'late']);
    expect(seen[1]!.at - start).toBeGreaterThanOrEqual(1_200 - 20);
  });

  it('a rebalance neither loses nor double-acks: revoked in-flight messages go to the new owner, kept ones are not handed out twice', async () => {
    const topic = fresh('rebalance');
    const group = fresh('g');
    const first = await open();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const byFirst = new Map<string, number>();
    const bySecond = new Map<string, number>();
    await first.subscribe(
      topic,
      async (message) => {
        byFirst.set(message.id, (byFirst.get(message.id) ?? 0) + 1);
        await gate;
      },
      group,
      { ensure: true, concurrency: 100, createOptions: { numPartitions: 4 } },
    );
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await first.publish(topic, { body: { i }, key: `key-${i}` })).id);
    await waitFor(() => byFirst.size === 40, 15_000, () => `all 40 held by the first consumer, got ${byFirst.size}`);

    const second = await open();
    await second.subscribe(topic, (message) => void bySecond.set(message.id, (bySecond.get(message.id) ?? 0) + 1), group, { concurrency: 100 });
    // The partitions that moved are redelivered to the second consumer from the committed position.
    await waitFor(() => bySecond.size > 0, 15_000, 'the second consumer gets the revoked partitions');
    await pause(1_000);
    release();
    for (let i = 40; i < 60; i++) ids.push((await first.publish(topic, { body: { i }, key: `key-${i}` })).id);
    await waitFor(() => ids.every((id) => byFirst.has(id) || bySecond.has(id)), 15_000, 'every id handled by one of them');
    expect([...byFirst.values()].every((count) => count === 1), 'the first consumer never got a kept message twice').toBe(true);
    await first.close();
    await second.close();

    // Everything is committed: a new member of the group finds nothing left to do.
    const third = await open();
    const leftover: string[] = [];
    await third.subscribe(topic, (message) => void leftover.push(message.id), group);
    await pause(2_000);
    expect(leftover, 'nothing left uncommitted').toEqual([]);
  });
});

/** Polls partition 0's committed offset until it equals `expected` or `timeoutMs` passes; returns the last value. */
async function committedWithin(admin: Admin, group: string, topic: string, expected: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const committed = (await committedOffsets(admin, group, topic)).get(0) ?? -1;
    if (committed === expected || Date.now() > deadline) return committed;
    await pause(100);
  }
}
