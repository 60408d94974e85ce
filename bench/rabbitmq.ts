/**
 * RabbitMQ: OmniQueue beside raw amqplib on the same broker, same message size, same in-flight
 * window and same prefetch. Publish (confirmed) and end-to-end (publish → handler → ack)
 * throughput with p50/p99 latency, and the ratio OmniQueue / raw.
 *
 * @packageDocumentation
 */
import { randomBytes, randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { RabbitMQAdapter, groupQueueName } from '../adapters/rabbitmq/RabbitMQAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { alternate, benchRounds, medianRow, type BenchRow } from './stats.js';

const URL_ = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Options of the RabbitMQ benchmark. */
export interface RabbitBenchOptions {
  /** Messages per measured run. Default 20,000. */
  readonly messages?: number;
  /** Publishes in flight at once. Default 200. */
  readonly window?: number;
  /** Consumer prefetch (OmniQueue concurrency). Default 64. */
  readonly prefetch?: number;
  /** Body padding, bytes. Default 200 (≈ 230-byte JSON body). */
  readonly padBytes?: number;
  /** Alternated raw/OmniQueue rounds; the table shows medians. Default `BENCH_ROUNDS` or 3. */
  readonly rounds?: number;
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

async function omniEndToEnd(broker: Broker, connection: amqp.ChannelModel, topic: string, group: string, count: number, window: number, prefetch: number, pad: string): Promise<Run> {
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
  // As the raw run, leave no queue bound behind: later runs would pay for routing into it.
  const channel = await connection.createChannel();
  await channel.deleteQueue(groupQueueName(topic, group));
  await channel.close();
  return { rate, latencies };
}

/**
 * The properties and headers OmniQueue puts on every message (persistent, message id, content
 * type, timestamp, `omniqueue-id`, `omniqueue-published-at`), so both sides send frames of the
 * same size.
 */
function rawProperties(): amqp.Options.Publish {
  const id = randomUUID();
  const now = Date.now();
  return {
    persistent: true,
    messageId: id,
    contentType: 'application/json',
    timestamp: Math.floor(now / 1000),
    headers: { 'omniqueue-id': id, 'omniqueue-published-at': String(now) },
  };
}

async function rawPublish(channel: amqp.ConfirmChannel, exchange: string, count: number, window: number, pad: string): Promise<Run> {
  const latencies = new Float64Array(count);
  const started = performance.now();
  await inWindows(count, window, (i) => {
    const t = performance.now();
    const content = Buffer.from(JSON.stringify({ t, pad }));
    return new Promise<void>((resolve, reject) =>
      channel.publish(exchange, '', content, rawProperties(), (error: unknown) => {
        if (error) return reject(error);
        latencies[i] = performance.now() - t;
        resolve();
      }),
    );
  });
  return { rate: count / ((performance.now() - started) / 1000), latencies };
}

async function rawEndToEnd(connection: amqp.ChannelModel, publisher: amqp.ConfirmChannel, exchange: string, queue: string, count: number, window: number, prefetch: number, pad: string): Promise<Run> {
  const channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, exchange, '#');
  await channel.prefetch(prefetch);
  const latencies = new Float64Array(count);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const { consumerTag } = await channel.consume(queue, (message) => {
    if (!message) return;
    const body = JSON.parse(message.content.toString('utf8')) as Body;
    latencies[handled++] = performance.now() - body.t;
    channel.ack(message);
    if (handled === count) done();
  });
  const started = performance.now();
  await inWindows(
    count,
    window,
    () =>
      new Promise<void>((resolve, reject) =>
        publisher.publish(exchange, '', Buffer.from(JSON.stringify({ t: performance.now(), pad })), rawProperties(), (error: unknown) =>
          error ? reject(error) : resolve(),
        ),
      ),
  );
  await finished;
  const rate = count / ((performance.now() - started) / 1000);
  await channel.cancel(consumerTag);
  await channel.deleteQueue(queue);
  await channel.close();
  return { rate, latencies };
}

/** RabbitMQ publish and end-to-end runs, OmniQueue beside raw amqplib, alternated, medians reported. */
export async function runRabbitBench(options: RabbitBenchOptions = {}): Promise<BenchRow[]> {
  const count = options.messages ?? 20_000;
  const window = options.window ?? 200;
  const prefetch = options.prefetch ?? 64;
  const rounds = options.rounds ?? benchRounds();
  const pad = 'x'.repeat(options.padBytes ?? 200);
  const topic = `bench_rmq_${randomBytes(4).toString('hex')}`;
  const adapter = new RabbitMQAdapter({ url: URL_, logger: silentLogger });
  const broker = new Broker(adapter, { logger: silentLogger });
  await broker.init();
  const connection = await amqp.connect(URL_);
  const publisher = await connection.createConfirmChannel();
  const groups = Array.from({ length: rounds }, (_, round) => `omni${round}`);
  try {
    // The publish runs need a bound queue so messages are stored (and routed) as in real use.
    await adapter.ensure({ topic, group: 'sink' });
    await omniPublish(broker, topic, 2_000, window, pad); // warm-up
    await rawPublish(publisher, topic, 2_000, window, pad);
    const publish = await alternate(rounds, {
      raw: () => rawPublish(publisher, topic, count, window, pad),
      omni: () => omniPublish(broker, topic, count, window, pad),
    });
    const purge = await connection.createChannel();
    await purge.deleteQueue(groupQueueName(topic, 'sink'));
    await purge.close();

    const e2e = await alternate(rounds, {
      raw: (round) => rawEndToEnd(connection, publisher, topic, `${topic}.raw${round}`, count, window, prefetch, pad),
      omni: (round) => omniEndToEnd(broker, connection, topic, groups[round]!, count, window, prefetch, pad),
    });
    const publishName = `rabbitmq publish (confirmed, ${window} in flight)`;
    const e2eName = `rabbitmq publish→handle→ack (prefetch ${prefetch})`;
    return [
      medianRow(publishName, 'raw amqplib', publish.raw!, undefined, 'confirm channel, persistent, same properties + headers'),
      medianRow(publishName, 'omniqueue', publish.omni!, publish.raw, 'latency = publish → confirm'),
      medianRow(e2eName, 'raw amqplib', e2e.raw!, undefined, 'JSON.parse + basic.ack'),
      medianRow(e2eName, 'omniqueue', e2e.omni!, e2e.raw, 'latency = publish → handler'),
    ];
  } finally {
    await broker.close();
    await connection.close();
    const cleaner = new RabbitMQAdapter({ url: URL_, logger: silentLogger });
    await cleaner.connect();
    await cleaner.deleteTopology(topic, ['sink', ...groups]).catch(() => undefined);
    for (const group of groups) await cleaner.deleteTopology(`${topic}.${group}.dlq`, ['dlq']).catch(() => undefined);
    await cleaner.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  console.log(renderTable(await runRabbitBench()));
}
