/**
 * Interop with plain kafkajs, both ways: a plain producer's JSON record reaches an OmniQueue handler
 * with body, headers and key intact; an OmniQueue publish is read by a plain consumer as JSON bytes
 * with native headers and key; a plain producer's non-JSON body is dead-lettered with a reason and
 * the subscription keeps running.
 */
import kafkajs from 'kafkajs';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { deadLetterTopicOf, type Broker } from '../../runtime/Broker.js';
import type { Message } from '../../runtime/message.js';
import { WireHeader } from '../../runtime/wire.js';
import { kafkaAvailable } from '../brokers/kafka.js';
import { waitFor } from '../conformance/waitFor.js';
import { fresh, plainKafka, testBroker } from './kafkaTestKit.js';

const available = await kafkaAvailable();
const { Partitioners } = kafkajs;

describe.skipIf(!available)('Kafka interop with plain kafkajs', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });
  const open = async (): Promise<Broker> => {
    const broker = await testBroker();
    closers.push(() => broker.close({ drainTimeoutMs: 1_000 }));
    return broker;
  };
  const plainProducer = async () => {
    const producer = plainKafka('plain-producer').producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    closers.push(() => producer.disconnect());
    return producer;
  };

  it('plain kafkajs → OmniQueue: body, native headers and key arrive intact', async () => {
    const broker = await open();
    const topic = fresh('in');
    const received: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), fresh('g'), { ensure: true });
    const producer = await plainProducer();
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'order-7', value: JSON.stringify({ orderId: 7, total: 12.5 }), headers: { 'x-tenant': 'acme', 'content-type': 'application/json' } }],
    });
    await waitFor(() => received.length >= 1, 15_000, 'the plain record');
    const [message] = received;
    expect(message!.body).toEqual({ orderId: 7, total: 12.5 });
    expect(message!.headers).toMatchObject({ 'x-tenant': 'acme' });
    expect(message!.key).toBe('order-7');
    expect(message!.attempt).toBe(1);
    expect(message!.id, 'a foreign record gets the broker id topic/partition/offset').toMatch(new RegExp(`^${topic}/\\d+/\\d+$`));
  });

  it('OmniQueue → plain kafkajs: JSON bytes, native headers and key', async () => {
    const broker = await open();
    const topic = fresh('out');
    await broker.publish(topic, { body: { warm: true } }, { ensure: true });
    const consumer = plainKafka('plain-consumer').consumer({ groupId: fresh('plain'), sessionTimeout: 6_000, heartbeatInterval: 300 });
    closers.push(() => consumer.disconnect());
    const records: KafkaMessage[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void records.push(message) });
    const { id } = await broker.publish(topic, { body: { orderId: 9, items: ['a', 'b'] }, key: 'customer-3', headers: { 'x-tenant': 'acme', 'x-count': 2 } });
    await waitFor(() => records.length >= 2, 15_000, 'both records');
    const record = records[1]!;
    expect(JSON.parse(record.value!.toString('utf8'))).toEqual({ orderId: 9, items: ['a', 'b'] });
    expect(record.key!.toString()).toBe('customer-3');
    const headers = Object.fromEntries(Object.entries(record.headers ?? {}).map(([name, value]) => [name, String(value)]));
    expect(headers).toMatchObject({ 'x-tenant': 'acme', 'x-count': '2', [WireHeader.Id]: id, [WireHeader.ContentType]: 'application/json' });
    expect(Number(headers[WireHeader.PublishedAt])).toBeGreaterThan(0);
  });

  it('a plain record with a non-JSON body goes to the dead-letter topic with a reason; the subscription keeps running', async () => {
    const broker = await open();
    const topic = fresh('poison');
    const group = fresh('g');
    const good: unknown[] = [];
    const dead: Message[] = [];
    await broker.subscribe(topic, (message) => void good.push(message.body), group, { ensure: true });
    await broker.subscribe(deadLetterTopicOf(topic, group), (message) => void dead.push(message), 'dlq', { ensure: true });
    const producer = await plainProducer();
    await producer.send({ topic, acks: -1, messages: [{ value: 'not json {' }, { value: JSON.stringify({ ok: 1 }) }] });
    await waitFor(() => dead.length >= 1 && good.length >= 1, 20_000, () => `1 dead letter and 1 good message, got ${dead.length} and ${good.length}`);
    expect(good).toEqual([{ ok: 1 }]);
    expect(dead[0]!.headers[WireHeader.DlqReason]).toBe('decode-failed');
    expect(new TextDecoder().decode(dead[0]!.body as Uint8Array)).toBe('not json {');
  });
});
