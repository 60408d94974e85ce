/**
 * Pulsar faults, each counting every id published and every id handled:
 * - a worker process holding unacked messages is killed with SIGKILL → another consumer of the
 *   group gets every one of them;
 * - the Pulsar standalone is restarted (`pulsar.sh restart`: the JVM stops and starts again, so
 *   every WebSocket drops) during a 10,000-message publish/consume run → producer and consumer
 *   reconnect by themselves, nothing is lost, and the subscription ends with no backlog.
 * The restart holds an exclusive lock so no other Pulsar test file of the run talks to the broker
 * meanwhile.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PulsarAdapter } from '../../adapters/pulsar/PulsarAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { waitFor } from '../conformance/waitFor.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { PULSAR_LOCK, pulsarAvailable, restartPulsar } from '../brokers/pulsar.js';

const url = await pulsarAvailable();
const run = randomBytes(4).toString('hex');
const brokers: Broker[] = [];
const newBroker = async (): Promise<Broker> => {
  const broker = new Broker(new PulsarAdapter({ url, maxReconnectDelayMs: 1_000, sendTimeoutMs: 60_000 }), { logger: silentLogger });
  await broker.init();
  brokers.push(broker);
  return broker;
};

afterAll(async () => {
  await Promise.allSettled(brokers.map((broker) => broker.close({ drainTimeoutMs: 1_000 })));
}, 120_000);

async function backlog(topic: string, group: string): Promise<number> {
  const response = await fetch(`${url}/admin/v2/persistent/public/default/${topic}/stats`);
  const stats = (await response.json()) as { subscriptions: Record<string, { msgBacklog: number }> };
  return stats.subscriptions[group]?.msgBacklog ?? -1;
}

/** Polls the subscription's backlog (admin stats) until it is 0; fails with the last value after `timeoutMs`. */
async function backlogDrains(topic: string, group: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await backlog(topic, group);
  while (last !== 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    last = await backlog(topic, group);
  }
  expect(last, 'backlog of the group').toBe(0);
}

describe.skipIf(!url)('pulsar faults', () => {
  it('SIGKILL of a worker holding unacked messages: another worker of the group gets all of them', async () => {
    await using _shared = await holdFileLock(PULSAR_LOCK, 'shared');
    const topic = `pulsar_kill_${run}`;
    const group = 'workers';
    const concurrency = 10;
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./holdingWorker.ts', import.meta.url)), url!, topic, group, String(concurrency)], {
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
      expect(held.size).toBe(concurrency); // prefetch = concurrency: it never holds more

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const received = new Map<string, Message>();
      const survivor = await newBroker();
      await survivor.subscribe(topic, (message) => void received.set(message.id, message), group, { ensure: true });
      await waitFor(() => ids.every((id) => received.has(id)), 30_000, () => `all 30 messages, got ${received.size}`);
      // Pulsar counts redeliveries on negative acks, not on a consumer that vanished: attempt stays 1.
      for (const id of held) expect(received.get(id)!.attempt, `attempt of the redelivered ${id}`).toBeGreaterThanOrEqual(1);
      await backlogDrains(topic, group, 10_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);

  it('a Pulsar restart during a 10,000-message run: reconnects by itself, zero lost', async () => {
    const topic = `pulsar_restart_${run}`;
    const group = 'workers';
    const total = 10_000;
    let exclusive: AsyncDisposable | undefined = await holdFileLock(PULSAR_LOCK, 'exclusive');
    try {
      const producer = await newBroker();
      const consumer = await newBroker();
      const handled = new Set<string>();
      let handledCalls = 0;
      await consumer.subscribe(
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
                } catch {
                  rejected++; // ConnectionError after sendTimeoutMs: publish again (same id)
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
      const restartBegan = Date.now();
      await restartPulsar();
      const restartMs = Date.now() - restartBegan;
      await publishing;
      await waitFor(() => handled.size >= total, 180_000, () => `all ${total} handled, got ${handled.size}`);
      expect(published.size).toBe(total);
      const lost = [...published].filter((id) => !handled.has(id));
      expect(lost, 'lost messages').toEqual([]);
      // Everything was settled: the subscription has no backlog left.
      await backlogDrains(topic, group, 30_000);
      console.info(
        `[pulsar restart] restart began after ${publishedAtRestart} publishes and took ${restartMs} ms; published ${published.size}, handled ${handled.size} distinct (${handledCalls} calls, ${handledCalls - handled.size} redeliveries), ${rejected} publish retries, ${Date.now() - started} ms in all`,
      );
    } finally {
      await exclusive?.[Symbol.asyncDispose]();
      exclusive = undefined;
    }
  }, 400_000);
});
