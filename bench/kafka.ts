/**
 * Kafka: OmniQueue's kafka adapter beside raw kafkajs and raw `@platformatic/kafka` on the same
 * broker, same message size (≈ 230-byte JSON body), same in-flight window, same producer
 * guarantees (idempotent, acks=all, one message per publish call).
 *
 * - publish: `window` publishes in flight, each resolving on the broker's acknowledgement;
 *   latency = publish call → acknowledgement.
 * - consume: a new group drains a pre-filled topic (3 partitions, 100,000 messages by default: a
 *   20,000-message drain lasts ≈ 80 ms, two or three fetches, too short to measure); throughput
 *   from the first message to the last, group join excluded. Each client decodes the JSON body;
 *   OmniQueue also runs its pipeline and commits only settled offsets. No latency (the messages
 *   were waiting).
 * - end to end: publish with the window while the group consumes; latency = publish → handler.
 *
 * Every scenario runs `rounds` times (`BENCH_ROUNDS`, default 3) with the clients in an order that
 * alternates from round to round; the table gives medians, and the note lists every run. Each
 * client drains 2,000 messages once before the measured drains (JIT, consumer code paths).
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { Consumer as PlatformaticConsumer, MessagesStreamModes, ProduceAcks, Producer as PlatformaticProducer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { KafkaAdapter } from '../adapters/kafka/KafkaAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { alternate, benchRounds, medianRow, type BenchRow } from './stats.js';

const { Kafka, Partitioners, logLevel } = kafkajs;
const BROKERS = (process.env.OMNIQUEUE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const PARTITIONS = 3;

/** Options of the Kafka benchmark. */
export interface KafkaBenchOptions {
  /** Messages per measured publish and end-to-end run. Default 20,000. */
  readonly messages?: number;
  /** Messages each consume run drains. Default 100,000. */
  readonly drainMessages?: number;
  /** Publishes in flight at once. Default 200. */
  readonly window?: number;
  /** Consumer prefetch (OmniQueue concurrency). Default 64. */
  readonly prefetch?: number;
  /** Body padding, bytes. Default 200 (≈ 230-byte JSON body). */
  readonly padBytes?: number;
  /** Alternated rounds per scenario; the table shows medians. Default `BENCH_ROUNDS` or 3. */
  readonly rounds?: number;
}

interface Run {
  rate: number;
  latencies?: Float64Array;
}

interface Body {
  readonly t: number;
  readonly pad: string;
}

/** `count` calls of `send`, at most `window` in flight at any time. */
async function inFlight(count: number, window: number, send: (index: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(window, count) }, async () => {
      while (next < count) await send(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/** A publish client: `publish(value)` resolves on the broker's acknowledgement. */
interface Publisher {
  publish(topic: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** A consumer client: calls `onMessage(value)` per message of `topic` from the earliest offset. */
interface Subscriber {
  subscribe(topic: string, group: string, onMessage: (value: Body) => void): Promise<() => Promise<void>>;
}

async function publishRun(publisher: Publisher, topic: string, count: number, window: number, pad: string): Promise<Run> {
  const latencies = new Float64Array(count);
  const rate = await inFlight(count, window, async (i) => {
    const t = performance.now();
    await publisher.publish(topic, JSON.stringify({ t, pad }));
    latencies[i] = performance.now() - t;
  });
  return { rate, latencies };
}

async function drainRun(subscriber: Subscriber, topic: string, count: number): Promise<Run> {
  let handled = 0;
  let first = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const stop = await subscriber.subscribe(topic, `drain_${randomBytes(4).toString('hex')}`, () => {
    if (handled === 0) first = performance.now();
    if (++handled === count) done();
  });
  await finished;
  const rate = count / ((performance.now() - first) / 1000);
  await stop();
  return { rate };
}

async function endToEndRun(publisher: Publisher, subscriber: Subscriber, topic: string, count: number, window: number, pad: string): Promise<Run> {
  const latencies = new Float64Array(count);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const stop = await subscriber.subscribe(topic, `e2e_${randomBytes(4).toString('hex')}`, (body) => {
    latencies[handled] = performance.now() - body.t;
    if (++handled === count) done();
  });
  const started = performance.now();
  await inFlight(count, window, () => publisher.publish(topic, JSON.stringify({ t: performance.now(), pad })));
  await finished;
  const rate = count / ((performance.now() - started) / 1000);
  await stop();
  return { rate, latencies };
}

function omniqueueClient(prefetch: number): Publisher & Subscriber {
  const broker = new Broker(
    new KafkaAdapter({ brokers: BROKERS, logger: silentLogger, consumer: { sessionTimeout: 6_000, rebalanceTimeout: 6_000, heartbeatInterval: 300 } }),
    { logger: silentLogger, tracing: false },
  );
  let ready: Promise<void> | undefined;
  const init = () => (ready ??= broker.init());
  return {
    async publish(topic, value) {
      await init();
      // The body object is what a user passes; the runtime encodes it once.
      await broker.publish(topic, { body: JSON.parse(value) as Body });
    },
    async subscribe(topic, group, onMessage) {
      await init();
      const subscription = await broker.subscribe<Body>(topic, (message) => onMessage(message.body), group, { concurrency: prefetch });
      return () => subscription.close();
    },
    close: () => broker.close(),
  };
}

function kafkajsClient(): Publisher & Subscriber {
  const kafka = new Kafka({ brokers: BROKERS, clientId: 'bench-kafkajs', logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, createPartitioner: Partitioners.DefaultPartitioner });
  let ready: Promise<void> | undefined;
  return {
    async publish(topic, value) {
      await (ready ??= producer.connect());
      await producer.send({ topic, acks: -1, messages: [{ value }] });
    },
    async subscribe(topic, group, onMessage) {
      const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6_000, rebalanceTimeout: 6_000, heartbeatInterval: 300, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => onMessage(JSON.parse(message.value!.toString('utf8')) as Body) });
      return () => consumer.disconnect();
    },
    close: async () => {
      if (ready) await producer.disconnect();
    },
  };
}

/**
 * Raw kafkajs with the whole window handed over in one `send()` (the client's own batching), for
 * reference: what kafkajs can do when the application batches for it.
 */
async function kafkajsBatchedPublishRun(topic: string, count: number, window: number, pad: string): Promise<Run> {
  const kafka = new Kafka({ brokers: BROKERS, clientId: 'bench-kafkajs-batch', logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const latencies = new Float64Array(count);
    const started = performance.now();
    for (let start = 0; start < count; start += window) {
      const size = Math.min(window, count - start);
      const t = performance.now();
      await producer.send({ topic, acks: -1, messages: Array.from({ length: size }, () => ({ value: JSON.stringify({ t, pad }) })) });
      latencies.fill(performance.now() - t, start, start + size);
    }
    return { rate: count / ((performance.now() - started) / 1000), latencies };
  } finally {
    await producer.disconnect();
  }
}

function platformaticClient(): Publisher & Subscriber {
  const producer = new PlatformaticProducer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: BROKERS,
    serializers: stringSerializers,
    // @platformatic/kafka 1.35.0 advances an idempotent producer's sequence numbers only when a
    // response arrives, so concurrent send() calls fail with OUT_OF_ORDER_SEQUENCE_NUMBER: it runs
    // non-idempotent here (still acks=all).
    idempotent: false,
    acks: ProduceAcks.ALL,
    autocreateTopics: false,
  });
  const consumers: PlatformaticConsumer<string, string, string, string>[] = [];
  return {
    async publish(topic, value) {
      await producer.send({ messages: [{ topic, value }] });
    },
    async subscribe(topic, group, onMessage) {
      const consumer = new PlatformaticConsumer({
        groupId: group,
        clientId: 'bench-platformatic',
        bootstrapBrokers: BROKERS,
        deserializers: stringDeserializers,
        sessionTimeout: 6_000,
        rebalanceTimeout: 6_000,
        heartbeatInterval: 300,
        maxWaitTime: 100,
      });
      consumers.push(consumer);
      const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: true });
      stream.on('data', (message) => onMessage(JSON.parse(message.value) as Body));
      return async () => {
        await stream.close();
        await consumer.close(true);
      };
    },
    close: async () => {
      await producer.close();
    },
  };
}

/**
 * Kafka publish, consume and end-to-end runs: OmniQueue beside raw kafkajs (the baseline of the
 * ratio) and raw `@platformatic/kafka`, all on the same broker in one process, alternated, medians
 * reported.
 */
export async function runKafkaBench(options: KafkaBenchOptions = {}): Promise<BenchRow[]> {
  const count = options.messages ?? 20_000;
  const drainCount = options.drainMessages ?? 100_000;
  const window = options.window ?? 200;
  const prefetch = options.prefetch ?? 64;
  const rounds = options.rounds ?? benchRounds();
  const pad = 'x'.repeat(options.padBytes ?? 200);
  const suffix = randomBytes(4).toString('hex');
  const admin = new Kafka({ brokers: BROKERS, clientId: 'bench-admin', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const perRound = (prefix: string) => Array.from({ length: rounds }, (_, round) => `${prefix}_${suffix}_${round}`);
  // A new group reads its topic from the beginning: every end-to-end run gets a topic of its own.
  const topics = {
    publish: `bench_kafka_pub_${suffix}`,
    drain: `bench_kafka_drain_${suffix}`,
    e2e: { omniqueue: perRound('bench_kafka_e2e_oq'), kafkajs: perRound('bench_kafka_e2e_kjs'), platformatic: perRound('bench_kafka_e2e_pf') },
  };
  const allTopics = [topics.publish, topics.drain, ...Object.values(topics.e2e).flat()];
  await admin.createTopics({ topics: allTopics.map((topic) => ({ topic, numPartitions: PARTITIONS })), waitForLeaders: true });
  const clients = { kafkajs: kafkajsClient(), platformatic: platformaticClient(), omniqueue: omniqueueClient(prefetch) };
  try {
    // Warm-up: connections, metadata, JIT.
    for (const client of Object.values(clients)) await publishRun(client, topics.publish, 2_000, window, pad);
    for (const client of Object.values(clients)) await drainRun(client, topics.publish, 2_000);

    const pub = await alternate(rounds, {
      kafkajs: () => publishRun(clients.kafkajs, topics.publish, count, window, pad),
      platformatic: () => publishRun(clients.platformatic, topics.publish, count, window, pad),
      omniqueue: () => publishRun(clients.omniqueue, topics.publish, count, window, pad),
      kafkajsBatched: () => kafkajsBatchedPublishRun(topics.publish, count, window, pad),
    });

    // The drain topic holds `drainCount` messages written by OmniQueue (JSON body + its headers);
    // every drain is a new group reading all of them.
    await publishRun(clients.omniqueue, topics.drain, drainCount, window, pad);
    const drain = await alternate(rounds, {
      kafkajs: () => drainRun(clients.kafkajs, topics.drain, drainCount),
      platformatic: () => drainRun(clients.platformatic, topics.drain, drainCount),
      omniqueue: () => drainRun(clients.omniqueue, topics.drain, drainCount),
    });

    const e2eCount = Math.min(count, 10_000);
    const e2e = await alternate(rounds, {
      kafkajs: (round) => endToEndRun(clients.kafkajs, clients.kafkajs, topics.e2e.kafkajs[round]!, e2eCount, window, pad),
      platformatic: (round) => endToEndRun(clients.platformatic, clients.platformatic, topics.e2e.platformatic[round]!, e2eCount, window, pad),
      omniqueue: (round) => endToEndRun(clients.omniqueue, clients.omniqueue, topics.e2e.omniqueue[round]!, e2eCount, window, pad),
    });

    const publishName = `kafka publish (idempotent, acks=all, ${window} in flight)`;
    const drainName = `kafka consume: new group drains ${drainCount.toLocaleString('en-US')} (${PARTITIONS} partitions)`;
    const e2eName = `kafka publish→handle (prefetch ${prefetch})`;
    return [
      medianRow(publishName, 'raw kafkajs', pub.kafkajs!, undefined, 'one send() per message, maxInFlightRequests 5'),
      medianRow(publishName, 'raw @platformatic/kafka', pub.platformatic!, pub.kafkajs, 'one send() per message; NOT idempotent (see source)'),
      medianRow(publishName, 'omniqueue', pub.omniqueue!, pub.kafkajs, 'concurrent publishes share a produce request'),
      medianRow(publishName, 'raw kafkajs, batched', pub.kafkajsBatched!, pub.kafkajs, `reference: ${window} messages per send(), one request in flight`),
      medianRow(drainName, 'raw kafkajs', drain.kafkajs!, undefined, 'eachMessage + JSON.parse, auto-commit'),
      medianRow(drainName, 'raw @platformatic/kafka', drain.platformatic!, drain.kafkajs, "stream 'data' + JSON.parse, autocommit"),
      medianRow(drainName, 'omniqueue', drain.omniqueue!, drain.kafkajs, 'full pipeline; commits settled offsets only'),
      medianRow(e2eName, 'raw kafkajs', e2e.kafkajs!, undefined, `${e2eCount.toLocaleString('en-US')} msgs; latency = publish → handler`),
      medianRow(e2eName, 'raw @platformatic/kafka', e2e.platformatic!, e2e.kafkajs),
      medianRow(e2eName, 'omniqueue', e2e.omniqueue!, e2e.kafkajs),
    ];
  } finally {
    await Promise.allSettled(Object.values(clients).map((client) => client.close()));
    // OmniQueue's groups leave their retry topics (`<topic>.<group>.retry`) behind: delete them too.
    const retryTopics = (await admin.listTopics().catch(() => [] as string[])).filter((topic) => allTopics.some((name) => topic.startsWith(`${name}.`)));
    await admin.deleteTopics({ topics: [...allTopics, ...retryTopics] }).catch(() => undefined);
    await admin.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  const started = performance.now();
  console.log(renderTable(await runKafkaBench()));
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
