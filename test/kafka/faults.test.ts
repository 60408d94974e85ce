/**
 * Kafka fault tests with zero messages lost, counting every id published and every id settled:
 * a worker process SIGKILLed while it holds unsettled messages, and a Kafka broker restart in the
 * middle of a 10,000-message publish/consume run.
 *
 * The restart test runs on a private broker instance (port 9192) so that restarting it never
 * disturbs the other Kafka test files running at the same time on the shared broker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../runtime/Broker.js';
import { OmniQueueError } from '../../runtime/errors.js';
import { kafkaAvailable, startKafka, type KafkaHandle } from '../brokers/kafka.js';
import { pause, waitFor } from '../conformance/waitFor.js';
import { fresh, testBroker } from './kafkaTestKit.js';

const available = await kafkaAvailable();
const canRestart = process.env.OMNIQUEUE_KAFKA_BROKERS === undefined;
const WORKER = fileURLToPath(new URL('./faultWorker.ts', import.meta.url));
/** Port of the private broker the restart test owns. */
const PRIVATE_PORT = 9192;

describe.skipIf(!available)('Kafka faults', () => {
  const brokers: Broker[] = [];
  const children: ChildProcess[] = [];
  let privateKafka: KafkaHandle | undefined;
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.allSettled(brokers.map((broker) => broker.close({ drainTimeoutMs: 1_000 })));
    await privateKafka?.stop();
  });
  const open = async (...args: Parameters<typeof testBroker>): Promise<Broker> => {
    const broker = await testBroker(...args);
    brokers.push(broker);
    return broker;
  };

  it(
    'a worker SIGKILLed while holding unsettled messages: the other member of the group gets every one of them',
    async () => {
      const topic = fresh('sigkill');
      const group = fresh('workers');
      const producer = await open();
      await producer.publish(topic, { body: 'create' }, { ensure: true, createOptions: { numPartitions: 2 } });

      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, topic, group], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      const held = new Set<string>();
      let ready = false;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') ready = true;
        else if (line.startsWith('held ')) held.add(line.slice(5));
      });
      await waitFor(() => ready, 30_000, 'the worker to join');

      // The second member: the two share the two partitions, one each.
      const survivor = await open();
      const settled = new Map<string, number>();
      await survivor.subscribe(topic, (message) => void settled.set(message.id, (settled.get(message.id) ?? 0) + 1), group, { concurrency: 50 });

      const ids: string[] = [];
      for (let i = 0; i < 100; i++) ids.push((await producer.publish(topic, { body: { i }, key: `key-${i}` })).id);
      await waitFor(() => ids.every((id) => held.has(id) || settled.has(id)), 20_000, () => `all 100 handed out, got ${ids.filter((id) => held.has(id) || settled.has(id)).length}`);
      const heldIds = ids.filter((id) => held.has(id) && !settled.has(id));
      expect(heldIds.length, 'the worker holds unsettled messages').toBeGreaterThan(0);

      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // The broker notices the dead member after its session timeout (6 s) and rebalances.
      await waitFor(() => ids.every((id) => settled.has(id)), 45_000, () => `all ${heldIds.length} held messages at the survivor, got ${heldIds.filter((id) => settled.has(id)).length}`);
      expect(ids.filter((id) => !settled.has(id)), 'lost').toEqual([]);
      console.log(`[kafka sigkill] worker held ${heldIds.length} of 100 unsettled when killed; the survivor settled all 100`);
    },
    120_000,
  );

  it.skipIf(!canRestart)(
    'a Kafka restart during a 10,000-message run: publisher and consumer reconnect by themselves, zero lost',
    async () => {
      privateKafka = await startKafka({ port: PRIVATE_PORT });
      const adapter = { brokers: privateKafka.brokers };
      const total = 10_000;
      const topic = fresh('restart');
      const group = fresh('g');
      const producer = await open({ adapter });
      const consumer = await open({ adapter });
      await producer.publish(topic, { body: 'create' }, { ensure: true, createOptions: { numPartitions: 3 } });
      const settled = new Map<string, number>();
      await consumer.subscribe(topic, (message) => void settled.set(message.id, (settled.get(message.id) ?? 0) + 1), group, { ensure: true, concurrency: 64 });

      const published = new Set<string>();
      let publishFailures = 0;
      let restart: Promise<void> | undefined;
      const started = Date.now();
      const publishOne = async (i: number): Promise<void> => {
        const id = `restart-${i}`;
        // A publish that rejects (broker away longer than the client's retries) is retried with the
        // same id: the test counts ids, so a retry never inflates the count.
        for (;;) {
          try {
            await producer.publish(topic, { id, body: { i }, key: `k${i % 32}` });
            published.add(id);
            return;
          } catch (error) {
            // Rule 8: a publish during the outage waits or rejects with a typed, retryable error.
            if (!(error instanceof OmniQueueError) || !error.retryable) throw error;
            publishFailures++;
            await pause(500);
          }
        }
      };
      let next = 0;
      const lanes = Array.from({ length: 64 }, async () => {
        while (next < total) {
          const i = next++;
          if (i === 3_000) restart = privateKafka!.restart();
          await publishOne(i);
        }
      });
      await Promise.all(lanes);
      await restart;
      await waitFor(() => [...published].every((id) => settled.has(id)), 120_000, () => `all ${total} ids settled, got ${[...published].filter((id) => settled.has(id)).length}`);
      const lost = [...published].filter((id) => !settled.has(id));
      const redelivered = [...settled.values()].reduce((sum, count) => sum + count - 1, 0);
      console.log(`[kafka restart] ${total} published and settled in ${Date.now() - started} ms across a broker restart; ${publishFailures} publish attempts rejected and retried; ${redelivered} redeliveries (at least once); 0 lost`);
      expect(published.size).toBe(total);
      expect(lost).toEqual([]);
    },
    300_000,
  );
});
