/**
 * Redis Streams interop with plain clients, delayed publish, and retention that never trims what a
 * group still needs.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisStreamsAdapter } from '../../adapters/redis-streams/RedisStreamsAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { deleteKeys, REDIS_URL, redisAvailable, testPrefix } from '../brokers/redis.js';
import { waitFor } from '../conformance/waitFor.js';

const available = await redisAvailable();
const prefix = testPrefix('streams-interop');

describe.skipIf(!available)('redis-streams interop and retention', () => {
  let plain: Redis;
  let adapter: RedisStreamsAdapter;
  let broker: Broker;
  beforeAll(() => {
    plain = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    await broker?.close();
  });
  afterAll(async () => {
    plain.disconnect();
    await deleteKeys(prefix);
  });
  async function open(): Promise<Broker> {
    adapter = new RedisStreamsAdapter({ url: REDIS_URL, prefix });
    broker = new Broker(adapter, { logger: silentLogger });
    await broker.init();
    return broker;
  }

  it('a plain XADD producer (JSON body field + header fields) is consumed with body and headers intact', async () => {
    await open();
    const received: Message[] = [];
    await broker.subscribe('plain-in', (message) => void received.push(message), 'g', { ensure: true });
    const id = await plain.xadd(`${prefix}plain-in`, '*', 'body', JSON.stringify({ orderId: 7, note: 'ünïcode' }), 'x-tenant', 'acme', 'content-type', 'application/json');
    await plain.xadd(`${prefix}plain-in`, '*', 'name', 'ada', 'age', '36');
    await waitFor(() => received.length >= 2, 10_000, 'both plain entries');
    expect(received[0]!.body).toEqual({ orderId: 7, note: 'ünïcode' });
    expect(received[0]!.headers).toMatchObject({ 'x-tenant': 'acme' });
    expect(received[0]!.id).toBe(id);
    expect(received[0]!.attempt).toBe(1);
    expect(Math.abs(received[0]!.publishedAt.getTime() - Number(id!.split('-')[0]))).toBe(0);
    // An entry without a body field arrives as the JSON object of its fields.
    expect(received[1]!.body).toEqual({ name: 'ada', age: '36' });
  });

  it('an OmniQueue publish read by plain XREAD has the JSON body in `body` and the headers as fields', async () => {
    await open();
    await broker.publish('plain-out', { body: { hello: 'world' }, key: 'k1', headers: { 'x-source': 'omniqueue' } });
    const reply = (await plain.xread('COUNT', 10, 'STREAMS', `${prefix}plain-out`, '0')) as [string, [string, string[]][]][];
    const fields = reply[0]![1][0]![1];
    const map = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i]!, fields[2 * i + 1]!]));
    expect(JSON.parse(map.body!)).toEqual({ hello: 'world' });
    expect(map).toMatchObject({ 'x-source': 'omniqueue', 'omniqueue-key': 'k1', 'content-type': 'application/json' });
    expect(map['omniqueue-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a nacked foreign entry keeps its id and counts attempts through the header', async () => {
    await open();
    const seen: { id: string; attempt: number }[] = [];
    await broker.subscribe(
      'plain-retry',
      (message) => {
        seen.push({ id: message.id, attempt: message.attempt });
        if (message.attempt < 3) throw new Error('not yet');
      },
      'g',
      { ensure: true, retry: { initialDelayMs: 20, maxDelayMs: 50 } },
    );
    const id = await plain.xadd(`${prefix}plain-retry`, '*', 'body', '"x"');
    await waitFor(() => seen.length >= 3, 10_000, 'three attempts');
    expect(seen).toEqual([
      { id, attempt: 1 },
      { id, attempt: 2 },
      { id, attempt: 3 },
    ]);
  });

  it('a delayed publish is not delivered before its delay', async () => {
    await open();
    const times: number[] = [];
    await broker.subscribe('delayed', () => void times.push(Date.now()), 'g', { ensure: true });
    const started = Date.now();
    await broker.publish('delayed', { body: 1 }, { delayMs: 400 });
    await waitFor(() => times.length >= 1, 10_000, 'the delayed message');
    expect(times[0]! - started).toBeGreaterThanOrEqual(380);
  });

  it('retention never trims entries a group has not acknowledged, unless asked', async () => {
    await open();
    const topic = 'retained';
    const stream = adapter.streamKey(topic);
    await broker.subscribe(topic, () => {}, 'fast', { ensure: true, createOptions: { maxLen: 5 } });
    // A group with no consumer running: it has read nothing.
    await adapter.ensure({ topic, group: 'slow' });
    for (let i = 0; i < 20; i++) await broker.publish(topic, { body: { i } });
    expect(await adapter.trim(topic)).toBe(0);
    expect(await plain.xlen(stream)).toBe(20);

    // Once the slow group has read and acknowledged everything, maxLen applies.
    const slow: number[] = [];
    await broker.subscribe<{ i: number }>(topic, (message) => void slow.push(message.body.i), 'slow', { ensure: true });
    await waitFor(() => slow.length >= 20, 10_000, 'the slow group catching up');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await adapter.trim(topic)).toBe(15);
    expect(await plain.xlen(stream)).toBe(5);

    // trimUnacknowledged trims regardless.
    await adapter.ensure({ topic, group: 'idle' });
    for (let i = 0; i < 5; i++) await broker.publish(topic, { body: { i } });
    await adapter.trim(topic, { maxLen: 2, trimUnacknowledged: false });
    expect(await plain.xlen(stream), 'the 5 entries the idle group has not read survive').toBeGreaterThanOrEqual(5);
    expect(await adapter.trim(topic, { maxLen: 2, trimUnacknowledged: true })).toBeGreaterThan(0);
    expect(await plain.xlen(stream)).toBe(2);
  });
});
