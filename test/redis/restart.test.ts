/**
 * Redis restart during a 10,000-message run, on a private redis-server (port 6390, nothing on disk)
 * so the shared Redis of the other tests is never disturbed.
 *
 * What the adapters promise across a restart of a Redis that keeps nothing on disk: entries and
 * jobs Redis held at the moment of the restart are gone (Redis lost them; with AOF they would not
 * be). Every publish settles — it resolves, or rejects with a typed, retryable error — and never
 * hangs. Consumers reconnect by themselves, recreate their group and receive every message whose
 * publish resolved after Redis was back.
 */
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullMQAdapter } from '../../adapters/bullmq/BullMQAdapter.js';
import { RedisStreamsAdapter } from '../../adapters/redis-streams/RedisStreamsAdapter.js';
import type { Adapter } from '../../runtime/contract.js';
import { Broker } from '../../runtime/Broker.js';
import { OmniQueueError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';
import { redisAnswers, redisAvailable } from '../brokers/redis.js';
import { waitFor } from '../conformance/waitFor.js';

const PORT = 6390;
const URL = `redis://127.0.0.1:${PORT}`;
const available = await redisAvailable();

function startPrivateRedis(): void {
  execFileSync('redis-server', ['--port', String(PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes', '--dir', '/tmp', '--logfile', '/tmp/omniqueue-redis-6390.log']);
}

async function stopPrivateRedis(): Promise<void> {
  const admin = new Redis(URL, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
    await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
  } catch {
    /* already down */
  } finally {
    admin.disconnect();
  }
}

async function restartPrivateRedis(): Promise<void> {
  await stopPrivateRedis();
  for (let i = 0; i < 50 && (await redisAnswers(URL, 200)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  startPrivateRedis();
  for (let i = 0; i < 100 && !(await redisAnswers(URL, 200)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe.skipIf(!available)(`Redis restart during a 10,000-message run (private redis-server on ${PORT})`, () => {
  beforeAll(async () => {
    if (!(await redisAnswers(URL, 300))) startPrivateRedis();
  });
  afterAll(async () => {
    await stopPrivateRedis();
  });

  /**
   * When each adapter is "back": Redis Streams as soon as Redis answers (XADD recreates the stream
   * and the consumer recreates its group from the stream's start). BullMQ once the consumer has put
   * its group back into the topic's group set — the set lived in Redis, so publishes made before
   * that find no group and reach nobody (declared in the README row).
   */
  const cases: { name: string; make: () => Adapter; back: (topic: string) => Promise<void> }[] = [
    { name: 'redis-streams', make: () => new RedisStreamsAdapter({ url: URL, claimIdleMs: 2_000 }), back: async () => {} },
    {
      name: 'bullmq',
      make: () => new BullMQAdapter({ url: URL, lockDurationMs: 2_000, stalledIntervalMs: 1_000 }),
      back: async (topic) => {
        const probe = new Redis(URL);
        try {
          for (let i = 0; i < 200 && (await probe.sismember(`bull:omniqueue:groups:${topic}`, 'g')) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
        } finally {
          probe.disconnect();
        }
      },
    },
  ];
  for (const testCase of cases) {
    it(`${testCase.name}: every publish settles; everything published after Redis is back is consumed`, async () => {
      for (let i = 0; i < 100 && !(await redisAnswers(URL, 200)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const total = 10_000;
      const topic = `restart-${testCase.name}`;
      const consumerBroker = new Broker(testCase.make(), { logger: silentLogger });
      const publisher = new Broker(testCase.make(), { logger: silentLogger });
      await consumerBroker.init();
      await publisher.init();
      const received = new Set<number>();
      try {
        await consumerBroker.subscribe<{ i: number }>(topic, (message) => void received.add(message.body.i), 'g', { ensure: true, concurrency: 32 });
        let backAt = Number.POSITIVE_INFINITY;
        const resolvedAt = new Map<number, number>();
        const rejected: unknown[] = [];
        let next = 0;
        let restarted: Promise<void> | undefined;
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            while (next < total) {
              const i = next++;
              if (i === 3_000) restarted = restartPrivateRedis().then(() => testCase.back(topic)).then(() => void (backAt = Date.now()));
              try {
                await publisher.publish(topic, { body: { i } });
                resolvedAt.set(i, Date.now());
              } catch (error) {
                rejected.push(error);
              }
            }
          }),
        );
        await restarted;
        expect(resolvedAt.size + rejected.length, 'every publish settled').toBe(total);
        // On a loaded machine the 10,000 may all be settled before Redis is back: publish 500 more
        // after it, starting past the 50 ms margin that the count below leaves for publishes that
        // were already under way when the adapter came back.
        await new Promise((resolve) => setTimeout(resolve, 100));
        for (let i = total; i < total + 500; i++) {
          await publisher.publish(topic, { body: { i } });
          resolvedAt.set(i, Date.now());
        }
        for (const error of rejected) expect(error).toBeInstanceOf(OmniQueueError);
        const afterRestart = [...resolvedAt].filter(([, at]) => at > backAt + 50).map(([i]) => i);
        expect(afterRestart.length, 'publishes after the restart').toBeGreaterThanOrEqual(500);
        await waitFor(() => afterRestart.every((i) => received.has(i)), 30_000, () => `all ${afterRestart.length} published after the restart, missing ${afterRestart.filter((i) => !received.has(i)).length}`);
        console.log(
          `[${testCase.name}] restart at message 3000: ${resolvedAt.size} publishes resolved, ${rejected.length} rejected (typed), ${received.size} consumed; ` +
            `lost with Redis' memory: ${[...resolvedAt.keys()].filter((i) => !received.has(i)).length}`,
        );
      } finally {
        await publisher.close();
        await consumerBroker.close();
      }
    }, 90_000);
  }
});
