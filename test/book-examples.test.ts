/**
 * The OmniQueue book's examples, kept as written (chapter 1 "A Simple Example" and §2.6.3
 * "OmniQueue's Approach"); only the package names and the adapter ('memory' instead of 'rabbitmq')
 * differ, because the book's packages are `@omniqueue/*` and this test runs on the embedded broker.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { create, silentLogger, type Message } from 'omniqueue';
import 'omniqueue/adapters/memory'; // registers the "memory" adapter

type Broker = Awaited<ReturnType<typeof create>>;
const opened: Broker[] = [];

async function until(predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((broker) => broker.close()));
  vi.restoreAllMocks();
});

describe('the book, chapter 1: a simple example', () => {
  it('compiles and runs as written', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});

    // Create and init a broker instance
    const broker = await create('memory', { logger: silentLogger });
    opened.push(broker);
    await broker.init();

    // Publisher: send one event to the topic "orders"
    await broker.publish(
      'orders',
      {
        id: 'ulid-01JABCDEF...',
        body: { orderId: 'A123', status: 'confirmed' },
        headers: { 'x-source': 'checkout' },
      },
      {
        ensure: true, // lazily create the destination if missing
        // createOptions can pass through to the adapter (durable, partitions, etc.)
      },
    );

    // Subscriber: each GROUP receives a copy; work is shared inside the group.
    const seen: Message[] = [];
    await broker.subscribe(
      'orders',
      async (msg) => {
        seen.push(msg);
        try {
          console.log('Processing order', msg.body);
          await msg.ack();
        } catch (err) {
          await msg.nack(true); // requeue on error
        }
      },
      'order-service', // <-- mandatory groupId
      { ensure: true }, // optional ConsumeOptions
    );

    // The group was created by subscribe, after the publish above: publish again so it has work.
    await broker.publish('orders', { id: 'ulid-01JABCDEG...', body: { orderId: 'A124', status: 'confirmed' }, headers: { 'x-source': 'checkout' } });
    await until(() => seen.length === 1);
    expect(seen[0]!.id).toBe('ulid-01JABCDEG...');
    expect(seen[0]!.headers['x-source']).toBe('checkout');
    expect(log).toHaveBeenCalledWith('Processing order', { orderId: 'A124', status: 'confirmed' });

    // ...later, graceful shutdown
    await broker.close();
  });

  it('requeues with nack(true) when processing throws', async () => {
    const broker = await create('memory', { logger: silentLogger, retry: { initialDelayMs: 1, maxDelayMs: 5 } });
    opened.push(broker);
    await broker.init();
    const attempts: number[] = [];
    await broker.subscribe(
      'orders',
      async (msg) => {
        try {
          attempts.push(msg.attempt);
          if (msg.attempt < 3) throw new Error('downstream unavailable');
          await msg.ack();
        } catch (err) {
          await msg.nack(true); // requeue on error
        }
      },
      'order-service',
      { ensure: true },
    );
    await broker.publish('orders', { id: '1', body: { orderId: 'A125' }, headers: {} });
    await until(() => attempts.length === 3);
    expect(attempts).toEqual([1, 2, 3]);
  });
});

describe('the book, §2.6.3: OmniQueue’s approach', () => {
  it('point-to-point with one group, fanout with several', async () => {
    const broker = await create('memory', { logger: silentLogger });
    opened.push(broker);
    await broker.init();
    const got = { orderService: [] as unknown[], fraud: [] as unknown[], analytics: [] as unknown[] };
    const handler = async (msg: Message) => void got.orderService.push(msg.body);
    const handler1 = async (msg: Message) => void got.fraud.push(msg.body);
    const handler2 = async (msg: Message) => void got.analytics.push(msg.body);

    // Point-to-point: single group
    await broker.subscribe('orders', handler, 'order-service', { ensure: true });
    await broker.subscribe('orders', handler, 'order-service', { ensure: true });

    // Fanout: multiple groups get all events
    await broker.subscribe('orders', handler1, 'fraud-check', { ensure: true });
    await broker.subscribe('orders', handler2, 'analytics', { ensure: true });

    for (let i = 0; i < 10; i++) await broker.publish('orders', { id: String(i), body: { n: i }, headers: {} });
    await until(() => got.orderService.length === 10 && got.fraud.length === 10 && got.analytics.length === 10);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(got.orderService).toHaveLength(10);
    expect(new Set(got.orderService.map((body) => (body as { n: number }).n)).size).toBe(10);
    expect(got.fraud).toHaveLength(10);
    expect(got.analytics).toHaveLength(10);
  });
});
