/**
 * NATS JetStream: OmniQueue beside raw nats.js on the same server, same message size, same
 * in-flight window and same pull size (`max_messages` = prefetch). Publish (PubAck) and
 * end-to-end (publish → handler → ack) throughput with p50/p99 latency, and the ratio
 * OmniQueue / raw. OmniQueue is measured with confirmed acks (its default) and with plain acks.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { NatsAdapter, streamName } from '../adapters/nats/NatsAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { quantile, type BenchRow } from './stats.js';

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
    const h = natsHeaders();
    h.set('content-type', 'application/json');
    await js.publish(subject, JSON.stringify({ t, pad }), { msgID: randomBytes(8).toString('hex'), headers: h });
    latencies[i] = performance.now() - t;
  });
  return { rate: count / ((performance.now() - started) / 1000), latencies };
}

async function rawEndToEnd(js: JetStreamClient, stream: string, subject: string, durable: string, count: number, window: number, prefetch: number, pad: string): Promise<Run> {
  const consumer = await js.consumers.get(stream, durable);
  const messages = await consumer.consume({ max_messages: prefetch });
  const latencies = new Float64Array(count);
  let handled = 0;
  const loop = (async () => {
    for await (const message of messages) {
      const body = message.json<Body>();
      latencies[handled++] = performance.now() - body.t;
      message.ack();
      if (handled === count) break;
    }
  })();
  const started = performance.now();
  await inWindows(count, window, async () => {
    const h = natsHeaders();
    h.set('content-type', 'application/json');
    await js.publish(subject, JSON.stringify({ t: performance.now(), pad }), { msgID: randomBytes(8).toString('hex'), headers: h });
  });
  await loop;
  const rate = count / ((performance.now() - started) / 1000);
  await messages.close();
  return { rate, latencies };
}

function row(name: string, client: string, run: Run, baseline: Run | undefined, note?: string): BenchRow {
  return { name, client, throughput: run.rate, p50Ms: quantile(run.latencies, 0.5), p99Ms: quantile(run.latencies, 0.99), ratio: baseline ? run.rate / baseline.rate : undefined, note };
}

/** JetStream publish and end-to-end runs, OmniQueue beside raw nats.js. */
export async function runNatsBench(options: NatsBenchOptions = {}): Promise<BenchRow[]> {
  const count = options.messages ?? 20_000;
  const window = options.window ?? 200;
  const prefetch = options.prefetch ?? 64;
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
  try {
    await confirmed.ensure({ topic });
    await omniPublish(broker, topic, 2_000, window, pad); // warm-up
    await rawPublish(js, topic, 2_000, window, pad);
    const rawPub = await rawPublish(js, topic, count, window, pad);
    const omniPub = await omniPublish(broker, topic, count, window, pad);
    await jsm.streams.purge(stream);

    await jsm.consumers.add(stream, { durable_name: 'raw', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, filter_subject: topic });
    const rawE2e = await rawEndToEnd(js, stream, topic, 'raw', count, window, prefetch, pad);
    await jsm.consumers.delete(stream, 'raw');
    const omniE2e = await omniEndToEnd(broker, topic, 'omni', count, window, prefetch, pad);
    const omniFast = await omniEndToEnd(fastBroker, topic, 'omnifast', count, window, prefetch, pad);
    const publishName = `jetstream publish (PubAck, ${window} in flight)`;
    const e2eName = `jetstream publish→handle→ack (pull ${prefetch})`;
    return [
      row(publishName, 'raw nats.js', rawPub, undefined, 'Nats-Msg-Id + content-type header'),
      row(publishName, 'omniqueue', omniPub, rawPub, 'latency = publish → PubAck'),
      row(e2eName, 'raw nats.js', rawE2e, undefined, 'consume(), json(), ack()'),
      row(e2eName, 'omniqueue (confirmed acks)', omniE2e, rawE2e, 'default: ack waits for AckAck'),
      row(e2eName, 'omniqueue (confirmAcks: false)', omniFast, rawE2e, 'plain ack, as raw'),
    ];
  } finally {
    await broker.close();
    await fastBroker.close();
    for (const name of [stream, streamName(`${topic}.omni.dlq`), streamName(`${topic}.omnifast.dlq`)]) await jsm.streams.delete(name).catch(() => false);
    await nc.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  console.log(renderTable(await runNatsBench()));
}
