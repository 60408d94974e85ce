import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAdapter } from '../../adapters/memory/MemoryAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { IdempotencyStore } from '../../runtime/pipeline/IdempotencyStore.js';
import { MemoryIdempotencyStore } from '../../runtime/pipeline/MemoryIdempotencyStore.js';
import { PostgresIdempotencyStore } from '../../runtime/stores/PostgresIdempotencyStore.js';
import { RedisIdempotencyStore } from '../../runtime/stores/RedisIdempotencyStore.js';
import { requirePostgres } from '../brokers/postgres.js';

const run = `${process.pid}-${Date.now()}`;
let redis: Redis;
let pool: pg.Pool;
const table = `processed_test_${process.pid}`;
const stores: Record<string, () => IdempotencyStore> = {};

beforeAll(async () => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  pool = await requirePostgres();
  const postgres = new PostgresIdempotencyStore(pool, { table });
  await postgres.install();
  stores.memory = () => new MemoryIdempotencyStore();
  stores.redis = () => new RedisIdempotencyStore(redis, { prefix: `test:idem:${run}:` });
  stores.postgres = () => postgres;
});

afterAll(async () => {
  const keys = await redis?.keys(`test:idem:${run}:*`);
  if (keys?.length) await redis.del(...keys);
  redis?.disconnect();
  await pool?.query(`DROP TABLE IF EXISTS ${table}`);
  await pool?.end();
});

describe.each(['memory', 'redis', 'postgres'])('idempotency store: %s', (name) => {
  const key = (suffix: string) => `${name}-${run}-${suffix}`;

  it('claims once, reports in-progress, then done after completion', async () => {
    const store = stores[name]!();
    expect(await store.claim(key('a'), 10_000)).toBe('claimed');
    expect(await store.claim(key('a'), 10_000)).toBe('in-progress');
    await store.complete(key('a'), 60_000);
    expect(await store.claim(key('a'), 10_000)).toBe('done');
  });

  it('a released or expired claim can be claimed again', async () => {
    const store = stores[name]!();
    expect(await store.claim(key('b'), 10_000)).toBe('claimed');
    await store.release(key('b'));
    expect(await store.claim(key('b'), 30)).toBe('claimed');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.claim(key('b'), 10_000)).toBe('claimed');
  });

  it('release never drops a completed id', async () => {
    const store = stores[name]!();
    await store.claim(key('c'), 10_000);
    await store.complete(key('c'), 60_000);
    await store.release(key('c'));
    expect(await store.claim(key('c'), 10_000)).toBe('done');
  });

  it('twenty concurrent claims of one id: exactly one wins', async () => {
    const store = stores[name]!();
    const results = await Promise.all(Array.from({ length: 20 }, () => store.claim(key('d'), 10_000)));
    expect(results.filter((result) => result === 'claimed')).toHaveLength(1);
  });
});

describe('idempotent consumer', () => {
  it('a message republished with the same id is handled once per group', async () => {
    const broker = new Broker(new MemoryAdapter(), { logger: silentLogger });
    await broker.init();
    const handled: string[] = [];
    await broker.subscribe('payments', (msg) => void handled.push(msg.id), 'ledger', {
      ensure: true,
      idempotency: { store: stores.redis!() },
    });
    await broker.publish('payments', { id: `pay-${run}`, body: { amount: 5 } });
    await broker.publish('payments', { id: `pay-${run}`, body: { amount: 5 } });
    await broker.publish('payments', { id: `pay-${run}-2`, body: { amount: 6 } });
    await expect.poll(() => handled.length).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(handled).toEqual([`pay-${run}`, `pay-${run}-2`]);
    await broker.close();
  });
});
