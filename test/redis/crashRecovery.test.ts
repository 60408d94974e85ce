/**
 * SIGKILLed worker → no loss, on both Redis adapters. A child process takes messages and holds them
 * unsettled; it is killed with SIGKILL (no shutdown code runs); a surviving consumer then gets every
 * message, the held ones through the broker's own recovery: XAUTOCLAIM (Redis Streams) or BullMQ's
 * stalled-job check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { BullMQAdapter } from '../../adapters/bullmq/BullMQAdapter.js';
import { RedisStreamsAdapter } from '../../adapters/redis-streams/RedisStreamsAdapter.js';
import type { Adapter } from '../../runtime/contract.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { deleteKeys, redisAvailable, testPrefix } from '../brokers/redis.js';
import { waitFor } from '../conformance/waitFor.js';
import { CRASH_SETTINGS } from './crashSettings.js';

const available = await redisAvailable();
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(prefix);
});

const cases = [
  { name: 'redis-streams', prefix: () => testPrefix('crash-streams'), make: (prefix: string): Adapter => new RedisStreamsAdapter({ ...CRASH_SETTINGS.streams, prefix }) },
  {
    name: 'bullmq',
    prefix: () => testPrefix('crash-bullmq'),
    make: (prefix: string): Adapter => new BullMQAdapter({ ...CRASH_SETTINGS.bullmq, prefix: prefix.slice(0, -1) }),
  },
] as const;

describe.skipIf(!available)('SIGKILLed worker loses nothing', () => {
  for (const testCase of cases) {
    it(`${testCase.name}: messages held by a killed worker are redelivered to a surviving one`, async () => {
      const keyPrefix = testCase.prefix();
      prefixes.push(keyPrefix);
      const adapterPrefix = testCase.name === 'bullmq' ? keyPrefix.slice(0, -1) : keyPrefix;
      const topic = 'crash';
      const group = 'workers';
      const total = 30;
      const held = 5;

      const broker = new Broker(testCase.make(keyPrefix), { logger: silentLogger });
      await broker.init();
      try {
        // The group exists before anything is published.
        await (await broker.subscribe(topic, () => {}, group, { ensure: true })).close();
        const ids: string[] = [];
        for (let i = 0; i < total; i++) ids.push((await broker.publish(topic, { body: { i } })).id);

        const child = spawn(process.execPath, ['--import', 'tsx', 'test/redis/crashWorker.ts', testCase.name, adapterPrefix, topic, group, String(held)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const holding = await heldBy(child, held);
        expect(holding.size).toBe(held);
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));

        const received = new Map<string, number>();
        await broker.subscribe(
          topic,
          (message) => {
            received.set(message.id, message.attempt);
          },
          group,
          { ensure: true, concurrency: 8 },
        );
        await waitFor(() => ids.every((id) => received.has(id)), 20_000, () => `all ${total} messages after the kill, got ${received.size}`);
        expect(ids.filter((id) => !received.has(id))).toEqual([]);
        for (const id of holding) expect(received.get(id), `attempt of a message the killed worker held`).toBeGreaterThanOrEqual(2);
      } finally {
        await broker.close();
      }
    }, 60_000);
  }
});

/** Resolves with the ids the child holds once it reports `count` of them. */
function heldBy(child: ChildProcess, count: number): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    const ids = new Set<string>();
    const timer = setTimeout(() => reject(new Error(`child held ${ids.size} of ${count} messages after 20 s`)), 20_000);
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('HOLD ')) return;
      ids.add(line.slice(5));
      if (ids.size === count) {
        clearTimeout(timer);
        resolve(ids);
      }
    });
  });
}

