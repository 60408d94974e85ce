/**
 * NATS JetStream faults, each counting every id published and every id handled:
 * - a worker process holding unacked messages is killed with SIGKILL → another consumer of the
 *   group gets every one of them (after AckWait, 5 s by default);
 * - the nats-server is restarted during a 10,000-message publish/consume run → producer and
 *   consumer reconnect by themselves (nats.js), nothing is lost, and the consumer ends with no
 *   pending or unacknowledged message.
 * The restart holds an exclusive lock so no other NATS test file of the run is talking to the
 * shared server meanwhile.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { durableName, NatsAdapter, streamName } from '../../adapters/nats/NatsAdapter.js';
import { Broker, deadLetterTopicOf } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { waitFor } from '../conformance/waitFor.js';
import { describeRun, runThroughRestart } from '../faults/runThroughRestart.js';
import { NATS_LOCK, NATS_SERVERS, natsMissing, restartNatsServer } from '../brokers/nats.js';
import { holdFileLock } from '../brokers/rabbitmq.js';

const missing = await natsMissing();
const run = randomBytes(4).toString('hex');
const topics: string[] = [];
const brokers: Broker[] = [];
const newBroker = async (): Promise<Broker> => {
  const broker = new Broker(new NatsAdapter({ servers: NATS_SERVERS, logger: silentLogger }), { logger: silentLogger });
  await broker.init();
  brokers.push(broker);
  return broker;
};

afterAll(async () => {
  await Promise.allSettled(brokers.map((broker) => broker.close({ drainTimeoutMs: 1_000 })));
  if (missing !== undefined) return;
  const nc = await connect({ servers: NATS_SERVERS });
  const jsm = await jetstreamManager(nc);
  for (const topic of topics) await jsm.streams.delete(streamName(topic)).catch(() => false);
  await nc.close();
}, 60_000);

describe.skipIf(missing !== undefined)(`nats faults${missing ? ` — skipped: ${missing}` : ''}`, () => {
  it('SIGKILL of a worker holding unacked messages: another worker of the group gets all of them', async () => {
    const topic = `nats_kill_${run}`;
    topics.push(topic, deadLetterTopicOf(topic, 'workers'));
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
      expect(held.size).toBe(concurrency); // never more unsettled deliveries than the prefetch

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const received = new Map<string, Message>();
      const survivor = await newBroker();
      await survivor.subscribe(topic, (message) => void received.set(message.id, message), group, { ensure: true });
      await waitFor(() => ids.every((id) => received.has(id)), 20_000, () => `all 30 messages, got ${received.size}`);
      for (const id of held) expect(received.get(id)!.attempt, `attempt of the redelivered ${id}`).toBe(2);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('a nats-server restart during a 10,000-message run: reconnects by itself, zero lost', async () => {
    const topic = `nats_restart_${run}`;
    topics.push(topic, deadLetterTopicOf(topic, 'workers'));
    const group = 'workers';
    const result = await runThroughRestart({
      producer: await newBroker(),
      consumer: await newBroker(),
      topic,
      group,
      restart: async () => {
        await using _exclusive = await holdFileLock(NATS_LOCK, 'exclusive');
        await restartNatsServer(1_000);
      },
    });
    expect(result.published.size).toBe(10_000);
    expect(result.lost, 'lost messages').toEqual([]);
    // Everything gets settled: acks lost in the outage come back after AckWait and are handled
    // again, until the durable consumer has nothing pending and nothing unacknowledged.
    const nc = await connect({ servers: NATS_SERVERS });
    try {
      const jsm = await jetstreamManager(nc);
      let info = await jsm.consumers.info(streamName(topic), durableName(group));
      for (let i = 0; i < 150 && (info.num_ack_pending > 0 || info.num_pending > 0); i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        info = await jsm.consumers.info(streamName(topic), durableName(group));
      }
      expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({ pending: 0, ackPending: 0 });
    } finally {
      await nc.close();
    }
    await result.subscription.close();
    console.info(describeRun('nats', result));
  }, 240_000);
});
