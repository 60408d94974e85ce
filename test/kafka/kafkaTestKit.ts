/**
 * Shared pieces of the Kafka adapter tests: brokers on the test Kafka with fast group timing, a
 * plain kafkajs client for interop and inspection, and fresh names.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { Admin } from 'kafkajs';
import { KafkaAdapter, type KafkaAdapterOptions } from '../../adapters/kafka/KafkaAdapter.js';
import { Broker, type BrokerOptions } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { KAFKA_BROKERS } from '../brokers/kafka.js';

const { Kafka, logLevel } = kafkajs;

/** Group timing for tests: a dead member is noticed within 6 s, joins take well under a second. */
export const FAST_GROUP_TIMING = Object.freeze({ sessionTimeout: 6_000, rebalanceTimeout: 5_000, heartbeatInterval: 300 });

/** A Kafka adapter on the test broker with {@link FAST_GROUP_TIMING}. */
export function testAdapter(options: KafkaAdapterOptions = {}): KafkaAdapter {
  // Options given win, `brokers` included (the restart test uses a private broker).
  return new KafkaAdapter({ brokers: KAFKA_BROKERS, logger: silentLogger, consumer: FAST_GROUP_TIMING, ...options });
}

/** An initialised broker on the test Kafka. */
export async function testBroker(options: BrokerOptions & { adapter?: KafkaAdapterOptions } = {}): Promise<Broker> {
  const { adapter, ...brokerOptions } = options;
  const broker = new Broker(testAdapter(adapter), { logger: silentLogger, retry: { initialDelayMs: 10, maxDelayMs: 50 }, ...brokerOptions });
  await broker.init();
  return broker;
}

/** A plain kafkajs client on the test broker (no OmniQueue code). */
export function plainKafka(clientId = 'plain-kafkajs'): InstanceType<typeof Kafka> {
  return new Kafka({ brokers: [...KAFKA_BROKERS], clientId, logLevel: logLevel.NOTHING });
}

/** A fresh topic or group name. */
export function fresh(label: string): string {
  return `kt_${label}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** The group's committed offset per partition (-1 when none). */
export async function committedOffsets(admin: Admin, group: string, topic: string): Promise<Map<number, number>> {
  const [entry] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map((entry?.partitions ?? []).map((partition) => [partition.partition, Number(partition.offset)]));
}
