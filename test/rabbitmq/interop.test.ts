/**
 * RabbitMQ interop with plain amqplib code, both ways: a plain producer's JSON body and native
 * headers reach an OmniQueue handler; an OmniQueue publish is read by a plain consumer as JSON
 * bytes with native headers and properties; a non-JSON body from a plain producer is dead-lettered
 * with a reason while the subscription keeps running.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitMQAdapter } from '../../adapters/rabbitmq/RabbitMQAdapter.js';
import { Broker, deadLetterTopicOf } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { WireHeader } from '../../runtime/wire.js';
import { waitFor } from '../conformance/waitFor.js';
import { AMQP_URL, deleteRabbitTopics, holdFileLock, RABBIT_LOCK, rabbitMissing } from '../brokers/rabbitmq.js';

const missing = await rabbitMissing();
// Shared lock: the fault test's broker restart waits until this file is done.
const lock = missing === undefined ? await holdFileLock(RABBIT_LOCK, 'shared') : undefined;
afterAll(() => lock?.[Symbol.asyncDispose]());
const run = randomBytes(4).toString('hex');
const topics: string[] = [];
const name = (label: string): string => {
  const topic = `rmq_interop_${label}_${run}`;
  topics.push(topic);
  return topic;
};

describe.skipIf(missing !== undefined)(`rabbitmq interop with plain amqplib${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let broker: Broker;
  let plain: ChannelModel;
  let channel: ConfirmChannel;

  beforeAll(async () => {
    broker = new Broker(new RabbitMQAdapter({ url: AMQP_URL, logger: silentLogger }), { logger: silentLogger, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    await broker.init();
    plain = await amqp.connect(AMQP_URL);
    channel = await plain.createConfirmChannel();
  });

  afterAll(async () => {
    await broker?.close();
    await plain?.close();
    await deleteRabbitTopics(topics);
  });

  const plainPublish = (exchange: string, routingKey: string, body: Buffer, options: amqp.Options.Publish): Promise<void> =>
    new Promise((resolve, reject) => channel.publish(exchange, routingKey, body, options, (error: unknown) => (error ? reject(error) : resolve())));

  it('a plain amqplib producer (JSON body, AMQP headers and properties) reaches the handler intact', async () => {
    const topic = name('in');
    const received: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), 'billing', { ensure: true });
    const body = { orderId: 7, lines: [{ sku: 'A', qty: 1 }], note: 'ünïcode' };
    await plainPublish(topic, 'customer-9', Buffer.from(JSON.stringify(body)), {
      contentType: 'application/json',
      messageId: 'legacy-42',
      timestamp: 1_700_000_000,
      persistent: true,
      headers: { 'x-tenant': 'acme', 'x-retries': 3, 'x-flag': true },
    });
    await waitFor(() => received.length >= 1, 10_000, 'the plain message');
    const [message] = received;
    expect(message!.body).toEqual(body);
    expect(message!.id).toBe('legacy-42');
    expect(message!.key).toBe('customer-9');
    expect(message!.attempt).toBe(1);
    expect(message!.contentType).toBe('application/json');
    expect(message!.publishedAt.getTime()).toBe(1_700_000_000_000);
    expect(message!.headers).toMatchObject({ 'x-tenant': 'acme', 'x-retries': '3', 'x-flag': 'true' });
  });

  it('an OmniQueue publish is read by a plain amqplib consumer as JSON bytes with native headers', async () => {
    const topic = name('out');
    await broker.publish(topic, { body: null }, { ensure: true }); // creates the exchange
    const queue = `${topic}.plain`;
    await channel.assertQueue(queue, { durable: false });
    await channel.bindQueue(queue, topic, '#');
    const got: ConsumeMessage[] = [];
    await channel.consume(queue, (message) => {
      if (message) {
        got.push(message);
        channel.ack(message);
      }
    });
    const body = { orderId: 8, total: 12.5, tags: ['a', 'b'] };
    const { id } = await broker.publish(topic, { id: 'oq-1', body, key: 'customer-1', headers: { 'x-tenant': 'acme', 'x-n': 5 } });
    await waitFor(() => got.length >= 1, 10_000, 'the OmniQueue message at the plain consumer');
    const message = got[0]!;
    expect(JSON.parse(message.content.toString('utf8'))).toEqual(body);
    expect(message.properties.messageId).toBe(id);
    expect(message.properties.contentType).toBe('application/json');
    expect(message.properties.deliveryMode).toBe(2);
    expect(message.fields.routingKey).toBe('customer-1');
    expect(message.properties.headers).toMatchObject({ 'x-tenant': 'acme', 'x-n': '5', [WireHeader.Id]: 'oq-1' });
    expect(Number(message.properties.headers![WireHeader.PublishedAt])).toBeGreaterThan(0);
  });

  it('a non-JSON body from a plain producer is dead-lettered with a reason, and the subscription keeps running', async () => {
    const topic = name('poison');
    const handled: unknown[] = [];
    await broker.subscribe(topic, (message) => void handled.push(message.body), 'billing', { ensure: true });
    const dead: Message[] = [];
    await broker.subscribe(deadLetterTopicOf(topic, 'billing'), (message) => void dead.push(message), 'dlq', { ensure: true, invalidJson: 'deliver-raw' });
    await plainPublish(topic, '', Buffer.from('<order id="1"/>'), { contentType: 'application/json', headers: { 'x-source': 'legacy' } });
    await waitFor(() => dead.length >= 1, 10_000, 'the poison message in the DLQ');
    expect(dead[0]!.headers[WireHeader.DlqReason]).toBe('decode-failed');
    expect(dead[0]!.headers[WireHeader.DlqError]).toMatch(/not valid JSON/);
    expect(dead[0]!.headers['x-source']).toBe('legacy');
    expect(Buffer.from(dead[0]!.body as Uint8Array).toString('utf8')).toBe('<order id="1"/>');
    await plainPublish(topic, '', Buffer.from(JSON.stringify({ ok: true })), { contentType: 'application/json' });
    await waitFor(() => handled.length >= 1, 10_000, 'the valid message after the poison one');
    expect(handled).toEqual([{ ok: true }]);
  });
});
