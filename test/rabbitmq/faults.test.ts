/**
 * RabbitMQ faults, each counting every id published and every id handled:
 * - a worker process holding unacked messages is killed with SIGKILL → another consumer of the
 *   group gets every one of them;
 * - the RabbitMQ application is restarted (`rabbitmqctl stop_app` / `start_app`) during a
 *   10,000-message publish/consume run → producer and consumer reconnect by themselves, nothing
 *   is lost, and the group queue ends empty (everything settled).
 * The restart holds an exclusive lock so no other RabbitMQ test file of the run is talking to the
 * shared broker meanwhile.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { groupQueueName, RabbitMQAdapter } from '../../adapters/rabbitmq/RabbitMQAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { waitFor } from '../conformance/waitFor.js';
import { describeRun, runThroughRestart } from '../faults/runThroughRestart.js';
import { AMQP_URL, deleteRabbitTopics, holdFileLock, RABBIT_LOCK, rabbitMissing, restartRabbitApp } from '../brokers/rabbitmq.js';

const missing = await rabbitMissing();
const run = randomBytes(4).toString('hex');
const topics: string[] = [];
const brokers: Broker[] = [];
const newBroker = async (): Promise<Broker> => {
  const broker = new Broker(new RabbitMQAdapter({ url: AMQP_URL, logger: silentLogger, reconnect: { maxDelayMs: 1_000 } }), { logger: silentLogger });
  await broker.init();
  brokers.push(broker);
  return broker;
};

afterAll(async () => {
  await Promise.allSettled(brokers.map((broker) => broker.close({ drainTimeoutMs: 1_000 })));
  if (missing === undefined) await deleteRabbitTopics(topics);
}, 120_000);

async function queueDepth(queue: string): Promise<number> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(queue)).messageCount;
  } finally {
    await connection.close();
  }
}

describe.skipIf(missing !== undefined)(`rabbitmq faults${missing ? ` — skipped: ${missing}` : ''}`, () => {
  it('SIGKILL of a worker holding unacked messages: another worker of the group gets all of them', async () => {
    const topic = `rmq_kill_${run}`;
    topics.push(topic);
    const group = 'workers';
    const concurrency = 10;
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./holdingWorker.ts', import.meta.url)), topic, group, String(concurrency)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const held = new Set<string>();
    let ready = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') ready = true;
      else if (line.startsWith('held ')) held.add(line.slice(5));
    });
    try {
      await waitFor(() => ready, 30_000, 'the child worker to subscribe');
      const producer = await newBroker();
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push((await producer.publish(topic, { body: { i } })).id);
      await waitFor(() => held.size >= concurrency, 10_000, () => `the child to hold ${concurrency} messages, holds ${held.size}`);
      expect(held.size).toBe(concurrency); // prefetch = concurrency: it never holds more

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const received = new Map<string, Message>();
      const survivor = await newBroker();
      await survivor.subscribe(topic, (message) => void received.set(message.id, message), group, { ensure: true });
      await waitFor(() => ids.every((id) => received.has(id)), 15_000, () => `all 30 messages, got ${received.size}`);
      for (const id of held) expect(received.get(id)!.attempt, `attempt of the redelivered ${id}`).toBe(2);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('a RabbitMQ restart (stop_app/start_app) during a 10,000-message run: reconnects by itself, zero lost', async () => {
    const topic = `rmq_restart_${run}`;
    topics.push(topic);
    const group = 'workers';
    const result = await runThroughRestart({
      producer: await newBroker(),
      consumer: await newBroker(),
      topic,
      group,
      restart: async () => {
        await using _exclusive = await holdFileLock(RABBIT_LOCK, 'exclusive');
        await restartRabbitApp(1_000);
      },
    });
    expect(result.published.size).toBe(10_000);
    expect(result.lost, 'lost messages').toEqual([]);
    // Everything was settled: after the consumer is closed nothing is left in the group queue.
    await result.subscription.close();
    expect(await queueDepth(groupQueueName(topic, group))).toBe(0);
    console.info(describeRun('rabbitmq', result));
  }, 240_000);
});
