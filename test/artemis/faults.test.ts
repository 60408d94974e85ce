/**
 * ActiveMQ Artemis faults, each counting every id published and every id handled:
 * - a worker process holding unacked messages is killed with SIGKILL → another worker of the
 *   group gets every one of them;
 * - the broker is restarted (`artemis.sh restart`: the JVM stops and starts again, every AMQP
 *   connection drops) during a 10,000-message publish/consume run → producer and consumer
 *   reconnect by themselves, nothing is lost, and the group queue ends empty (everything settled);
 * - the broker is down: a publish waits at most `sendTimeoutMs` and rejects with a
 *   `ConnectionError` (it never vanishes); once the broker is back the same adapter publishes and
 *   consumes again, and settling a delivery of the lost connection is a no-op.
 * The restarts hold the Artemis lock exclusively, so no other Artemis test file of the run that
 * takes it talks to the broker meanwhile.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtemisAdapter, type ArtemisAdapterOptions } from '../../adapters/artemis/ArtemisAdapter.js';
import { queueName } from '../../adapters/artemis/names.js';
import { Broker } from '../../runtime/Broker.js';
import { ConnectionError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { waitFor } from '../conformance/waitFor.js';
import { ARTEMIS, artemisAnswers, artemisMissing, artemisScript } from '../brokers/artemis.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { ARTEMIS_LOCK } from './artemisLock.js';
import { deleteArtemisQueues, queueStats, subscriptionQueues } from './queueStats.js';

const missing = await artemisMissing();
const run = randomBytes(4).toString('hex');
const queues: string[] = [];
const brokers: Broker[] = [];
const newBroker = async (options: Partial<ArtemisAdapterOptions> = {}): Promise<Broker> => {
  const broker = new Broker(new ArtemisAdapter({ ...ARTEMIS, maxReconnectDelayMs: 1_000, sendTimeoutMs: 60_000, ...options }), { logger: silentLogger });
  await broker.init();
  brokers.push(broker);
  return broker;
};

afterAll(async () => {
  await Promise.allSettled(brokers.map((broker) => broker.close({ drainTimeoutMs: 1_000 })));
  // Leave the broker running for whoever comes next, even if a test failed half-way through a restart.
  if (missing === undefined && !(await artemisAnswers())) await artemisScript('start');
  if (missing === undefined) await deleteArtemisQueues(queues);
}, 180_000);

/** Polls the group queue until nothing is left in it or handed out; fails with the last counters. */
async function queueDrains(name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await queueStats(name);
  while ((last?.messageCount !== 0 || last.deliveringCount !== 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    last = await queueStats(name);
  }
  expect(last, `counters of queue ${name}`).toEqual({ messageCount: 0, deliveringCount: 0 });
}

describe.skipIf(missing !== undefined)(`artemis faults${missing ? ` — skipped: ${missing}` : ''}`, () => {
  it('SIGKILL of a worker holding unacked messages: another worker of the group gets all of them', async () => {
    await using _shared = await holdFileLock(ARTEMIS_LOCK, 'shared');
    const topic = `artemis_kill_${run}`;
    const group = 'workers';
    queues.push(...subscriptionQueues(topic, group));
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
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(held.size).toBe(concurrency); // credit = concurrency: it never holds more

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const received = new Map<string, Message>();
      const survivor = await newBroker();
      await survivor.subscribe(topic, (message) => void received.set(message.id, message), group, { ensure: true });
      await waitFor(() => ids.every((id) => received.has(id)), 30_000, () => `all 30 messages, got ${received.size}`);
      // Artemis does not count a delivery whose connection dropped (it does count modified(delivery-failed)
      // and a broker restart): the redelivered messages come back with delivery-count 0, attempt 1.
      for (const id of held) expect(received.get(id)!.attempt, `attempt of the redelivered ${id}`).toBeGreaterThanOrEqual(1);
      for (const id of ids.filter((id) => !held.has(id))) expect(received.get(id)!.attempt, `attempt of ${id}, never delivered before`).toBe(1);
      await queueDrains(queueName(topic, group), 10_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);

  it('an Artemis restart during a 10,000-message run: reconnects by itself, zero lost', async () => {
    const topic = `artemis_restart_${run}`;
    const group = 'workers';
    queues.push(...subscriptionQueues(topic, group));
    const total = 10_000;
    await using _exclusive = await holdFileLock(ARTEMIS_LOCK, 'exclusive');
    const producer = await newBroker();
    const consumer = await newBroker();
    const handled = new Set<string>();
    let handledCalls = 0;
    const subscription = await consumer.subscribe(
      topic,
      (message) => {
        handledCalls++;
        handled.add(message.id);
      },
      group,
      { ensure: true, concurrency: 50 },
    );

    const published = new Set<string>();
    let rejected = 0;
    const rejections = new Map<string, number>();
    const publishAll = async (): Promise<void> => {
      const window = 200;
      for (let start = 0; start < total; start += window) {
        await Promise.all(
          Array.from({ length: Math.min(window, total - start) }, async (_, offset) => {
            const id = `m-${start + offset}`;
            for (;;) {
              try {
                await producer.publish(topic, { id, body: { n: start + offset } });
                published.add(id);
                return;
              } catch (error) {
                // The outcome of a publish cut by the restart is unknown: publish again (same id).
                rejected++;
                const name = (error as Error).name;
                rejections.set(name, (rejections.get(name) ?? 0) + 1);
              }
            }
          }),
        );
      }
    };

    const started = Date.now();
    const publishing = publishAll();
    await waitFor(() => published.size >= 3_000 && handled.size >= 500, 120_000, () => `3,000 published and 500 handled before the restart, got ${published.size} and ${handled.size}`);
    const publishedAtRestart = published.size;
    const handledAtRestart = handled.size;
    const restartBegan = Date.now();
    await artemisScript('restart');
    const restartMs = Date.now() - restartBegan;
    await publishing;
    await waitFor(() => handled.size >= total, 180_000, () => `all ${total} handled, got ${handled.size}`);
    expect(published.size).toBe(total);
    const lost = [...published].filter((id) => !handled.has(id));
    expect(lost, 'lost messages').toEqual([]);
    // Only ConnectionErrors: publishes cut by the restart, or made while the broker was away.
    expect([...rejections.keys()].filter((name) => name !== 'ConnectionError'), 'other publish errors').toEqual([]);
    // Everything was settled: nothing left in the group queue, nothing handed out.
    await queueDrains(queueName(topic, group), 30_000);
    await subscription.close();
    console.info(
      `[artemis restart] restart began after ${publishedAtRestart} publishes / ${handledAtRestart} handled and took ${restartMs} ms; published ${published.size}, handled ${handled.size} distinct (${handledCalls} calls, ${handledCalls - handled.size} redeliveries), ${rejected} publish retries, ${Date.now() - started} ms in all`,
    );
  }, 400_000);

  it('broker down: a publish waits at most sendTimeoutMs, then rejects with ConnectionError; stale settlements are no-ops; all resumes when it is back', async () => {
    const topic = `artemis_down_${run}`;
    const group = 'workers';
    queues.push(...subscriptionQueues(topic, group));
    await using _exclusive = await holdFileLock(ARTEMIS_LOCK, 'exclusive');
    const broker = await newBroker({ sendTimeoutMs: 2_000 });
    const received: Message[] = [];
    let held: Message | undefined;
    let settleNow = false;
    await broker.subscribe(
      topic,
      async (message) => {
        received.push(message);
        if ((message.body as { n: number }).n === 0 && held === undefined) {
          // Hold the first delivery across the outage, then settle it on the dead connection.
          held = message;
          await waitFor(() => settleNow, 120_000, 'the outage to end');
        }
      },
      group,
      { ensure: true, concurrency: 4 },
    );
    await broker.publish(topic, { id: 'before', body: { n: 0 } });
    await waitFor(() => held !== undefined, 10_000, 'the first delivery');

    await artemisScript('stop');
    try {
      const began = Date.now();
      const error = await broker.publish(topic, { id: 'during', body: { n: 1 } }).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      const waited = Date.now() - began;
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).retryable).toBe(true);
      expect(waited, 'waited for the connection before rejecting').toBeGreaterThanOrEqual(1_500);
      expect(waited, 'bounded by sendTimeoutMs').toBeLessThan(10_000);
    } finally {
      await artemisScript('start');
    }
    // The held delivery's connection is gone: its ack is a no-op, the broker redelivers it.
    settleNow = true;
    await broker.publish(topic, { id: 'after', body: { n: 2 } });
    await waitFor(() => received.some((message) => message.id === 'after'), 30_000, 'the message published after the restart');
    await waitFor(() => received.filter((message) => message.id === 'before').length >= 2, 30_000, 'the held message, redelivered after the restart');
    // Its attempt is the broker's delivery count, which Artemis keeps in memory only (unless
    // persist-delivery-count-before-delivery is set): across this restart it reads 1 or 2 depending on
    // whether the cancelled delivery was counted before the broker stopped, so it is not asserted.
    expect(received.some((message) => message.id === 'during')).toBe(false);
    await queueDrains(queueName(topic, group), 10_000);
  }, 300_000);
});
