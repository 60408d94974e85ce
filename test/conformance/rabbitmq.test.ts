/**
 * Conformance runner for the RabbitMQ adapter on the machine's RabbitMQ (127.0.0.1:5672). The
 * foreign publisher is plain amqplib: a raw body and native AMQP headers on the topic exchange, no
 * OmniQueue metadata. Every queue and exchange the run created is deleted afterwards.
 */
import amqp from 'amqplib';
import { afterAll, describe } from 'vitest';
import { RabbitMQAdapter } from '../../adapters/rabbitmq/RabbitMQAdapter.js';
import type { EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { Broker } from '../../runtime/Broker.js';
import { AMQP_URL, deleteRabbitTopics, holdFileLock, RABBIT_LOCK, rabbitMissing } from '../brokers/rabbitmq.js';
import { runConformance } from './runConformance.js';

const missing = await rabbitMissing();
// Shared lock: the fault test's broker restart waits until this file is done.
const lock = missing === undefined ? await holdFileLock(RABBIT_LOCK, 'shared') : undefined;
afterAll(() => lock?.[Symbol.asyncDispose]());
const topics = new Set<string>();

/** The adapter, remembering every topic it touched so afterAll can delete it. */
class TrackedRabbitMQAdapter extends RabbitMQAdapter {
  override ensure(request: EnsureRequest): Promise<void> {
    topics.add(request.topic);
    return super.ensure(request);
  }

  override send(message: WireMessage): Promise<void> {
    topics.add(message.topic);
    return super.send(message);
  }
}

afterAll(async () => {
  if (missing === undefined) await deleteRabbitTopics(topics);
}, 120_000);

describe.skipIf(missing !== undefined)(`rabbitmq${missing ? ` — skipped: ${missing}` : ''}`, () => {
  runConformance({
    name: 'rabbitmq',
    features: new RabbitMQAdapter().features,
    async connect(options) {
      const broker = new Broker(new TrackedRabbitMQAdapter({ url: AMQP_URL, logger: options?.logger }), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      topics.add(topic);
      const connection = await amqp.connect(AMQP_URL);
      try {
        const channel = await connection.createConfirmChannel();
        await new Promise<void>((resolve, reject) =>
          channel.publish(topic, '', Buffer.from(payload), { headers, persistent: true }, (error: unknown) => (error ? reject(error) : resolve())),
        );
      } finally {
        await connection.close();
      }
    },
  });
});
