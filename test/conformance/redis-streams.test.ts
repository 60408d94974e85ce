/**
 * Conformance runner for the Redis Streams adapter on the machine's Redis (127.0.0.1:6379). Every
 * key of the run lives under one unique prefix and is deleted afterwards.
 */
import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { REDIS_STREAMS_FEATURES, RedisStreamsAdapter } from '../../adapters/redis-streams/RedisStreamsAdapter.js';
import { BODY_FIELD } from '../../adapters/redis-streams/streamEntry.js';
import { Broker } from '../../runtime/Broker.js';
import { deleteKeys, REDIS_URL, redisAvailable, testPrefix } from '../brokers/redis.js';
import { runConformance } from './runConformance.js';

const available = await redisAvailable();
const prefix = testPrefix('cf-streams');
/** A plain ioredis client: the foreign producer. */
const plain = available ? new Redis(REDIS_URL) : undefined;

afterAll(async () => {
  plain?.disconnect();
  if (available) await deleteKeys(prefix);
});

describe.skipIf(!available)('redis-streams (Redis at 127.0.0.1:6379)', () => {
  runConformance({
    name: 'redis-streams',
    features: REDIS_STREAMS_FEATURES,
    async connect(options) {
      const broker = new Broker(new RedisStreamsAdapter({ url: REDIS_URL, prefix }), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      const fields: (string | Buffer)[] = [BODY_FIELD, Buffer.from(payload)];
      for (const [name, value] of Object.entries(headers)) fields.push(name, value);
      await plain!.xadd(`${prefix}${topic}`, '*', ...fields);
    },
  });
});
