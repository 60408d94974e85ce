import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAdapter } from '../../adapters/memory/MemoryAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { InvalidMessageError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { OutboxRelay, PostgresOutbox } from '../../runtime/outbox/index.js';
import { requirePostgres } from '../brokers/postgres.js';

const table = `outbox_test_${process.pid}`;
let pool: pg.Pool;
const outbox = new PostgresOutbox({ table });

beforeAll(async () => {
  pool = await requirePostgres();
  const client = await pool.connect();
  await outbox.install(client);
  await outbox.install(client);
  await client.query('CREATE TABLE IF NOT EXISTS outbox_orders (id text PRIMARY KEY)');
  client.release();
});

afterAll(async () => {
  await pool?.query(`DROP TABLE IF EXISTS ${table}`);
  await pool?.query('DROP TABLE IF EXISTS outbox_orders');
  await pool?.end();
});

async function brokerWithReader(topic: string): Promise<{ broker: Broker; received: Message[] }> {
  const broker = new Broker(new MemoryAdapter(), { logger: silentLogger });
  await broker.init();
  const received: Message[] = [];
  await broker.subscribe(topic, (msg) => void received.push(msg), 'g', { ensure: true });
  return { broker, received };
}

describe('transactional outbox (PostgreSQL)', () => {
  it('publishes what committed, with its id, and nothing of what rolled back', async () => {
    const { broker, received } = await brokerWithReader('outbox.orders');
    const client = await pool.connect();
    await client.query('BEGIN');
    await client.query('INSERT INTO outbox_orders (id) VALUES ($1)', [`kept-${process.pid}`]);
    const kept = await outbox.enqueue(client, 'outbox.orders', { body: { orderId: 'kept' }, headers: { tenant: 't1' }, key: 'c-1' });
    await client.query('COMMIT');
    await client.query('BEGIN');
    await outbox.enqueue(client, 'outbox.orders', { body: { orderId: 'rolled-back' } });
    await client.query('ROLLBACK');
    client.release();

    const relay = new OutboxRelay(outbox, pool, broker);
    expect(await relay.relayOnce()).toBe(1);
    await expect.poll(() => received.length).toBe(1);
    expect(received[0]!.id).toBe(kept.id);
    expect(received[0]!.body).toEqual({ orderId: 'kept' });
    expect(received[0]!.headers.tenant).toBe('t1');
    expect(received[0]!.key).toBe('c-1');
    expect(await outbox.pending(pool)).toBe(0);
    await broker.close();
  });

  it('rejects a bad message before the transaction commits', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(outbox.enqueue(pool, 'outbox.orders', { body: cyclic })).rejects.toBeInstanceOf(InvalidMessageError);
    await expect(outbox.enqueue(pool, 'bad topic!', { body: 1 })).rejects.toThrow(/Invalid topic name/);
  });

  it('keeps a row whose publish failed, with its error, and publishes it later', async () => {
    const { broker, received } = await brokerWithReader('outbox.retry');
    const closed = new Broker(new MemoryAdapter(), { logger: silentLogger });
    await outbox.enqueue(pool, 'outbox.retry', { body: { n: 1 } });
    const failing = new OutboxRelay(outbox, pool, closed, { retryDelayMs: 0 });
    expect(await failing.relayOnce()).toBe(0);
    const { rows } = await pool.query(`SELECT attempts, last_error FROM ${table} WHERE topic = 'outbox.retry'`);
    expect(rows[0]).toMatchObject({ attempts: 1 });
    expect(rows[0].last_error).toMatch(/NotInitializedError/);
    expect(await new OutboxRelay(outbox, pool, broker).relayOnce()).toBe(1);
    await expect.poll(() => received.length).toBe(1);
    await broker.close();
  });

  it('two relays running side by side publish each row once', async () => {
    const { broker, received } = await brokerWithReader('outbox.parallel');
    const client = await pool.connect();
    await client.query('BEGIN');
    for (let i = 0; i < 500; i++) await outbox.enqueue(client, 'outbox.parallel', { body: { i } });
    await client.query('COMMIT');
    client.release();
    const relays = [new OutboxRelay(outbox, pool, broker, { batchSize: 20, idleMs: 10 }), new OutboxRelay(outbox, pool, broker, { batchSize: 20, idleMs: 10 })];
    relays.forEach((relay) => relay.start());
    await expect.poll(() => received.length, { timeout: 20_000 }).toBe(500);
    await Promise.all(relays.map((relay) => relay.stop()));
    expect(new Set(received.map((msg) => (msg.body as { i: number }).i)).size).toBe(500);
    expect(relays[0]!.published + relays[1]!.published).toBe(500);
    await broker.close();
  });
});
