/**
 * NATS JetStream: OmniQueue beside raw nats.js on the same server, same message size, same
 * in-flight window and same pull size (`max_messages` = prefetch). Publish (PubAck) and
 * end-to-end (publish → handler → ack) throughput with p50/p99 latency, and the ratio
 * OmniQueue / raw. OmniQueue is measured with confirmed acks (its default) and with plain acks.
 *
 * @packageDocumentation
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { NatsAdapter, streamName } from '../adapters/nats/NatsAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { alternate, benchRounds, medianRow, type BenchRow } from './stats.js';

const SERVERS = process.env.NATS_URL ?? '127.0.0.1:4222';

/** Options of the NATS benchmark. */
export interface NatsBenchOptions {
  /** Messages per measured run. Default 20,000. */
  readonly messages?: number;
  /** Publishes in flight at once. Default 200. */
  readonly window?: number;
  /** Pull size / prefetch (OmniQueue concurrency). Default 64. */
  readonly prefetch?: number;
  /** Body padding, bytes. Default 200 (≈ 230-byte JSON body). */
  readonly padBytes?: number;
  /** Alternated raw/OmniQueue rounds; the table shows medians. Default `BENCH_ROUNDS` or 3. */
  readonly rounds?: number;
}

/** The headers OmniQueue puts on every message, so both sides send messages of the same size. */
function rawHeaders(): { id: string; h: ReturnType<typeof natsHeaders> } {
  const id = randomUUID();
  const h = natsHeaders();
  h.set('content-type', 'application/json');
  h.set('omniqueue-id', id);
  h.set('omniqueue-published-at', String(Date.now()));
  return { id, h };
}

/** The pull settings of the adapter's `consume()`, used by the raw side too. */
function pullOptions(prefetch: number): { max_messages: number; threshold_messages: number } {
  return { max_messages: prefetch, threshold_messages: Math.max(1, Math.floor(prefetch / 4)) };
}

interface Run {
  rate: number;
  latencies: Float64Array;
}

interface Body {
  readonly t: number;
  readonly pad: string;
}

async function inWindows(count: number, window: number, send: (index: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < count; start += window) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + window); i++) batch.push(send(i));
    await Promise.all(batch);
  }
}

async function omniPublish(broker: Broker, topic: string, count: number, window: number, pad: string): Promise<Run> {
  const latencies = new Float64Array(count);
  const started = performance.now();
  await inWindows(count, window, async (i) => {
    const t = performance.now();
    await broker.publish(topic, { body: { t, pad } });
    latencies[i] = performance.now() - t;
  });
  return { rate: count / ((performance.now() - started) / 1000), latencies };
}

async function omniEndToEnd(broker: Broker, topic: string, group: string, count: number, window: number, prefetch: number, pad: string): Promise<Run> {
  const latencies = new Float64Array(count);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const subscription = await broker.subscribe<Body>(
    topic,
    (message) => {
      latencies[handled++] = performance.now() - message.body.t;
      if (handled === count) done();
    },
    group,
    { ensure: true, concurrency: prefetch },
  );
  const started = performance.now();
  await inWindows(count, window, async () => void (await broker.publish(topic, { body: { t: performance.now(), pad } })));
  await finished;
  const rate = count / ((performance.now() - started) / 1000);
  await subscription.close();
  return { rate, latencies };
}

async function rawPublish(js: JetStreamClient, subject: string, count: number, window: number, pad: string): Promise<Run> {
  const latencies = new Float64Array(count);
  const started = performance.now();
  await inWindows(count, window, async (i) => {
    const t = performance.now();
    const { id, h } = rawHeaders();
    await js.publish(subject, JSON.stringify({ t, pad }), { msgID: id, headers: h });
    latencies[i] = performance.now() - t;
  });
  return { rate: count / ((performance.now() - started) / 1000), latencies };
}

/**
 * Raw end to end. `confirmed`: `ackAck()` (the server confirms the ack, as OmniQueue's default),
 * with at most `prefetch` messages unsettled, as the adapter; otherwise a plain `ack()`.
 */
async function rawEndToEnd(js: JetStreamClient, stream: string, subject: string, durable: string, count: number, window: number, prefetch: number, pad: string, confirmed: boolean): Promise<Run> {
  const consumer = await js.consumers.get(stream, durable);
  const messages = await consumer.consume(pullOptions(prefetch));
  const latencies = new Float64Array(count);
  let handled = 0;
  let unsettled = 0;
  let settled = 0;
  let wake: (() => void) | undefined;
  let done!: () => void;
  const allSettled = new Promise<void>((resolve) => (done = resolve));
  const onSettled = (): void => {
    unsettled--;
    if (++settled === count) done();
    wake?.();
    wake = undefined;
  };
  const loop = (async () => {
    for await (const message of messages) {
      const body = message.json<Body>();
      latencies[handled++] = performance.now() - body.t;
      if (confirmed) {
        unsettled++;
        message.ackAck().then(onSettled, onSettled);
        while (unsettled >= prefetch) await new Promise<void>((resolve) => (wake = resolve));
      } else {
        message.ack();
        if (++settled === count) done();
      }
      if (handled === count) break;
    }
  })();
  const started = performance.now();
  await inWindows(count, window, async () => {
    const { id, h } = rawHeaders();
    await js.publish(subject, JSON.stringify({ t: performance.now(), pad }), { msgID: id, headers: h });
  });
  await loop;
  await allSettled;
  const rate = count / ((performance.now() - started) / 1000);
  await messages.close();
  return { rate, latencies };
}

/** JetStream publish and end-to-end runs, OmniQueue beside raw nats.js, alternated, medians reported. */
export async function runNatsBench(options: NatsBenchOptions = {}): Promise<BenchRow[]> {
  const count = options.messages ?? 20_000;
  const window = options.window ?? 200;
  const prefetch = options.prefetch ?? 64;
  const rounds = options.rounds ?? benchRounds();
  const pad = 'x'.repeat(options.padBytes ?? 200);
  const topic = `bench_nats_${randomBytes(4).toString('hex')}`;
  const stream = streamName(topic);
  const confirmed = new NatsAdapter({ servers: SERVERS, logger: silentLogger });
  const plainAcks = new NatsAdapter({ servers: SERVERS, logger: silentLogger, confirmAcks: false });
  const broker = new Broker(confirmed, { logger: silentLogger });
  const fastBroker = new Broker(plainAcks, { logger: silentLogger });
  await broker.init();
  await fastBroker.init();
  const nc = await connect({ servers: SERVERS });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const groups: string[] = [];
  const rawRun = async (durable: string, confirmAcks: boolean): Promise<Run> => {
    await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, filter_subject: topic });
    try {
      return await rawEndToEnd(js, stream, topic, durable, count, window, prefetch, pad, confirmAcks);
    } finally {
      await jsm.consumers.delete(stream, durable);
    }
  };
  const omniRun = (target: Broker, group: string): Promise<Run> => {
    groups.push(group);
    return omniEndToEnd(target, topic, group, count, window, prefetch, pad);
  };
  try {
    await confirmed.ensure({ topic });
    await omniPublish(broker, topic, 2_000, window, pad); // warm-up
    await rawPublish(js, topic, 2_000, window, pad);
    const publish = await alternate(rounds, {
      raw: () => rawPublish(js, topic, count, window, pad),
      omni: () => omniPublish(broker, topic, count, window, pad),
    });
    await jsm.streams.purge(stream);
    const plain = await alternate(rounds, {
      raw: (round) => rawRun(`raw${round}`, false),
      omni: (round) => omniRun(fastBroker, `omnifast${round}`),
    });
    const acked = await alternate(rounds, {
      raw: (round) => rawRun(`rawack${round}`, true),
      omni: (round) => omniRun(broker, `omni${round}`),
    });
    const publishName = `jetstream publish (PubAck, ${window} in flight)`;
    const plainName = `jetstream publish→handle→ack (pull ${prefetch}, plain ack)`;
    const ackedName = `jetstream publish→handle→ack (pull ${prefetch}, confirmed ack)`;
    return [
      medianRow(publishName, 'raw nats.js', publish.raw!, undefined, 'Nats-Msg-Id + the same headers'),
      medianRow(publishName, 'omniqueue', publish.omni!, publish.raw, 'latency = publish → PubAck'),
      medianRow(plainName, 'raw nats.js', plain.raw!, undefined, 'consume(), json(), ack()'),
      medianRow(plainName, 'omniqueue (confirmAcks: false)', plain.omni!, plain.raw, 'plain ack, as raw'),
      medianRow(ackedName, 'raw nats.js', acked.raw!, undefined, `consume(), json(), ackAck(), ≤ ${prefetch} unsettled`),
      medianRow(ackedName, 'omniqueue (default)', acked.omni!, acked.raw, 'ack waits for the server'),
    ];
  } finally {
    await broker.close();
    await fastBroker.close();
    for (const name of [stream, ...groups.map((group) => streamName(`${topic}.${group}.dlq`))]) await jsm.streams.delete(name).catch(() => false);
    await nc.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  console.log(renderTable(await runNatsBench()));
}
