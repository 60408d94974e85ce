/**
 * Conformance runner for the BullMQ adapter on the machine's Redis (127.0.0.1:6379), under a unique
 * BullMQ prefix whose keys are deleted afterwards.
 *
 * The foreign producer is plain BullMQ code: `Queue.add` on every group queue of the topic. BullMQ
 * has no native headers, so a foreign message with headers uses the adapter's documented job data
 * shape `{ omniqueue: 1, payload (base64), headers }` — without any OmniQueue metadata header.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { BULLMQ_FEATURES, BullMQAdapter } from '../../adapters/bullmq/BullMQAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { deleteKeys, REDIS_URL, redisAvailable, testPrefix } from '../brokers/redis.js';
import { runConformance } from './runConformance.js';

const available = await redisAvailable();
const keyPrefix = testPrefix('cf-bullmq');
const prefix = keyPrefix.slice(0, -1);
const plain = available ? new Redis(REDIS_URL) : undefined;

afterAll(async () => {
  plain?.disconnect();
  if (available) await deleteKeys(keyPrefix);
});

describe.skipIf(!available)('bullmq (Redis at 127.0.0.1:6379)', () => {
  runConformance({
    name: 'bullmq',
    features: BULLMQ_FEATURES,
    async connect(options) {
      const broker = new Broker(new BullMQAdapter({ url: REDIS_URL, prefix }), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      const groups = await plain!.smembers(`${prefix}:omniqueue:groups:${topic}`);
      for (const group of groups) {
        const queue = new Queue(BullMQAdapter.queueName(topic, group), { connection: { host: '127.0.0.1', port: 6379 }, prefix });
        await queue.add('foreign', { omniqueue: 1, payload: Buffer.from(payload).toString('base64'), headers });
        await queue.close();
      }
    },
  });
});
