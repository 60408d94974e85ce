/**
 * BullMQ interop with plain BullMQ code, and the atomic fanout of a publish over every group queue.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BullMQAdapter } from '../../adapters/bullmq/BullMQAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { deleteKeys, REDIS_URL, redisAvailable, testPrefix } from '../brokers/redis.js';
import { waitFor } from '../conformance/waitFor.js';

const available = await redisAvailable();
const keyPrefix = testPrefix('bullmq-interop');
const prefix = keyPrefix.slice(0, -1);
const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };

describe.skipIf(!available)('bullmq interop', () => {
  let broker: Broker | undefined;
  afterEach(async () => {
    await broker?.close();
  });
  afterAll(async () => {
    await deleteKeys(keyPrefix);
  });
  async function open(): Promise<Broker> {
    broker = new Broker(new BullMQAdapter({ url: REDIS_URL, prefix }), { logger: silentLogger });
    await broker.init();
    return broker;
  }

  it('a plain BullMQ Queue.add job is consumed: data as the JSON body, job id as the message id', async () => {
    const b = await open();
    const received: Message[] = [];
    await b.subscribe('plain-in', (message) => void received.push(message), 'billing', { ensure: true });
    const queue = new Queue(BullMQAdapter.queueName('plain-in', 'billing'), { connection, prefix });
    const job = await queue.add('invoice', { orderId: 9, lines: [1, 2] });
    await queue.close();
    await waitFor(() => received.length >= 1, 10_000, 'the plain job');
    expect(received[0]!.body).toEqual({ orderId: 9, lines: [1, 2] });
    expect(received[0]!.id).toBe(job.id);
    expect(received[0]!.attempt).toBe(1);
    expect((received[0]!.raw as Job).name).toBe('invoice');
  });

  it('an OmniQueue publish is a job a plain BullMQ Worker reads as job.data.body, in every group queue', async () => {
    const b = await open();
    await b.subscribe('plain-out', () => {}, 'a', { ensure: true });
    await broker!.close();
    broker = undefined;
    const publisher = await open();
    // A second group registered through ensure only (no consumer running).
    await publisher.subscribe('plain-out', () => {}, 'b', { ensure: true }).then((s) => s.close());
    const { id } = await publisher.publish('plain-out', { body: { hello: 'bull' }, headers: { 'x-source': 'omniqueue' } });
    const seen: Record<string, unknown> = {};
    const workers = ['a', 'b'].map(
      (group) =>
        new Worker(
          BullMQAdapter.queueName('plain-out', group),
          async (job) => {
            seen[group] = job.data;
          },
          { connection, prefix },
        ),
    );
    try {
      await waitFor(() => Object.keys(seen).length === 2, 10_000, 'both group queues');
    } finally {
      await Promise.all(workers.map((worker) => worker.close()));
    }
    for (const group of ['a', 'b']) {
      expect(seen[group]).toMatchObject({ omniqueue: 1, body: { hello: 'bull' }, headers: { 'x-source': 'omniqueue', 'omniqueue-id': id } });
    }
  });

  it('publish adds one job to every group queue of the topic (FlowProducer.addBulk: one MULTI/EXEC), and none when the topic has no group', async () => {
    const b = await open();
    for (const group of ['g1', 'g2', 'g3']) await (await b.subscribe('fan', () => {}, group, { ensure: true })).close();
    await b.publish('fan', { body: 1 });
    await b.publish('nobody', { body: 1 });
    for (const group of ['g1', 'g2', 'g3']) {
      const queue = new Queue(BullMQAdapter.queueName('fan', group), { connection, prefix });
      expect(await queue.getWaitingCount()).toBe(1);
      await queue.close();
    }
  });

  it('refuses a topic/group pair whose queue name another pair already owns', async () => {
    const b = await open();
    await b.subscribe('x.y', () => {}, 'z', { ensure: true }).then((s) => s.close());
    await expect(b.subscribe('x', () => {}, 'y.z', { ensure: true })).rejects.toMatchObject({ code: 'CONFIG' });
  });
});
