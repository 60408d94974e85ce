/**
 * Brokerless latency: the ZeroMQ adapter's round trip on loopback (publisher process → peer
 * handler over one TCP hop), side by side with raw zeromq doing the same hop, the memory adapter
 * (no network at all) and NATS core (one broker hop each way) as a reference; and a stream run
 * (publish → handle → ack) beside raw zeromq doing the same work: credit 64, an ack per message
 * batched per tick, headers and payload parsed. Stream runs alternate raw/OmniQueue
 * (`BENCH_ROUNDS`, default 3) and report medians.
 *
 *   npx tsx bench/zeromq.ts        or as part of `npm run bench`
 */
import { randomUUID } from 'node:crypto';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Dealer, Router } from 'zeromq';
import { MemoryAdapter } from '../adapters/memory/MemoryAdapter.js';
import { ZeroMqAdapter } from '../adapters/zeromq/ZeroMqAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { alternate, benchRounds, medianRow, quantile, type BenchRow } from './stats.js';

/** Options of the ZeroMQ benchmark. */
export interface ZeroMqBenchOptions {
  /** Round trips per latency run. */
  readonly pings?: number;
  /** Messages per throughput run. */
  readonly messages?: number;
  /** Alternated raw/OmniQueue rounds; the table shows medians. Default `BENCH_ROUNDS` or 3. */
  readonly rounds?: number;
}

interface Run {
  readonly rate: number;
  readonly latencies: Float64Array;
}

const ROUND_TRIP = 'round trip on loopback, one at a time';
const STREAM = 'publish→handle→ack stream';

function row(name: string, client: string, run: Run, note: string, baseline?: Run): BenchRow {
  return {
    name,
    client,
    throughput: run.rate,
    p50Ms: quantile(run.latencies, 0.5),
    p99Ms: quantile(run.latencies, 0.99),
    ...(baseline ? { ratio: run.rate / baseline.rate } : {}),
    note,
  };
}

/** A ROUTER bound on loopback and a DEALER (routing id `bench-peer`) connected to it, the ROUTER already knowing the peer. */
async function connectedPair(): Promise<{ router: Router; dealer: Dealer }> {
  const router = new Router({ mandatory: true, sendHighWaterMark: 0, linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  const dealer = new Dealer({ routingId: 'bench-peer', receiveHighWaterMark: 0, linger: 0 });
  dealer.connect(router.lastEndpoint!);
  await dealer.send(['hello']);
  await router.receive();
  return { router, dealer };
}

/** Raw zeromq round trip: ROUTER sends `[topic, headers, payload]` to a DEALER, timed to its receive. */
async function rawZeroMq(count: number): Promise<Run> {
  const { router, dealer } = await connectedPair();
  const latencies = new Float64Array(count);
  const headers = JSON.stringify({ 'content-type': 'application/json' });
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await router.send(['bench-peer', 'bench', headers, JSON.stringify({ t })]);
    const [, , payload] = await dealer.receive();
    latencies[i] = performance.now() - (JSON.parse(payload!.toString()) as { t: number }).t;
  }
  const rate = count / ((performance.now() - started) / 1000);
  dealer.close();
  router.close();
  return { rate, latencies };
}

/**
 * Raw zeromq doing what the adapter's stream does: the ROUTER sends `[topic, headers, payload, tag]`
 * while it has credit (`credit` unacked messages at most, as the adapter's prefetch), the DEALER
 * parses each message's headers and payload and acks the tags it handled, batched once per event-loop turn, which gives
 * the credit back.
 */
async function rawZeroMqAcked(count: number, credit: number): Promise<Run> {
  const { router, dealer } = await connectedPair();
  const latencies = new Float64Array(count);
  const started = performance.now();
  let available = credit;
  let wake: (() => void) | undefined;
  const acks = (async () => {
    let acked = 0;
    while (acked < count) {
      const [, , ...tags] = await router.receive();
      acked += tags.length;
      available += tags.length;
      wake?.();
      wake = undefined;
    }
  })();
  const consuming = (async () => {
    let pending: string[] = [];
    const flush = (): void => {
      const tags = pending;
      pending = [];
      void dealer.send(['ack', ...tags]);
    };
    for (let i = 0; i < count; i++) {
      const [, headers, payload, tag] = await dealer.receive();
      JSON.parse(headers!.toString()); // the adapter reads the headers of every message too
      latencies[i] = performance.now() - (JSON.parse(payload!.toString()) as { t: number }).t;
      pending.push(tag!.toString());
      if (pending.length === 1) setImmediate(flush);
    }
  })();
  for (let i = 0; i < count; i++) {
    while (available === 0) await new Promise<void>((resolve) => (wake = resolve));
    available--;
    const headers = JSON.stringify({ 'content-type': 'application/json', 'omniqueue-id': randomUUID(), 'omniqueue-published-at': String(Date.now()) });
    await router.send(['bench-peer', 'bench', headers, JSON.stringify({ t: performance.now() }), String(i)]);
  }
  await consuming;
  await acks;
  const rate = count / ((performance.now() - started) / 1000);
  dealer.close();
  router.close();
  return { rate, latencies };
}

/** OmniQueue round trip: publish on `producer`, handled by a subscriber on `consumer`. */
async function omniRoundTrip(producer: Broker, consumer: Broker, pings: number): Promise<Run> {
  const latencies = new Float64Array(pings);
  let resolveOne: () => void = () => {};
  let index = 0;
  await consumer.subscribe<{ t: number }>(
    'ping',
    (message) => {
      latencies[index] = performance.now() - message.body.t;
      resolveOne();
    },
    'g',
    { ensure: true },
  );
  const started = performance.now();
  for (; index < pings; index++) {
    const handled = new Promise<void>((resolve) => (resolveOne = resolve));
    await producer.publish('ping', { body: { t: performance.now() } });
    await handled;
  }
  return { rate: pings / ((performance.now() - started) / 1000), latencies };
}

/** OmniQueue stream: `count` messages published with at most `window` unhandled, handled with concurrency 64. */
async function omniStream(producer: Broker, consumer: Broker, count: number): Promise<Run> {
  const latencies = new Float64Array(count);
  let handled = 0;
  let wake: (() => void) | undefined;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await consumer.subscribe<{ t: number }>(
    'stream',
    (message) => {
      latencies[handled++] = performance.now() - message.body.t;
      if (handled === count) done();
      if (wake && handled % 500 === 0) {
        wake();
        wake = undefined;
      }
    },
    'g',
    { ensure: true, concurrency: 64 },
  );
  const started = performance.now();
  for (let sent = 0; sent < count; sent += 500) {
    while (sent - handled > 5_000) await new Promise<void>((resolve) => (wake = resolve));
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < 500 && sent + i < count; i++) batch.push(producer.publish('stream', { body: { t: performance.now() } }));
    await Promise.all(batch);
  }
  await finished;
  return { rate: count / ((performance.now() - started) / 1000), latencies };
}

async function zeroMqPair(): Promise<{ producer: Broker; consumer: Broker; close: () => Promise<void> }> {
  const publisher = new ZeroMqAdapter({ bind: 'tcp://127.0.0.1:*' });
  const producer = new Broker(publisher, { logger: silentLogger, tracing: false });
  await producer.init();
  const consumer = new Broker(new ZeroMqAdapter({ connect: publisher.endpoint! }), { logger: silentLogger, tracing: false });
  await consumer.init();
  return { producer, consumer, close: async () => void (await consumer.close(), await producer.close()) };
}

/** NATS core (no JetStream): publish, timed to the subscription's receive. Undefined when NATS does not answer. */
async function natsCore(pings: number): Promise<Run | undefined> {
  let nc;
  try {
    nc = await natsConnect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222', timeout: 2_000, reconnect: false });
  } catch {
    return undefined;
  }
  const latencies = new Float64Array(pings);
  const subject = `bench.zeromq.${process.pid}`;
  const subscription = nc.subscribe(subject);
  const iterator = subscription[Symbol.asyncIterator]();
  await nc.flush();
  const started = performance.now();
  for (let i = 0; i < pings; i++) {
    nc.publish(subject, JSON.stringify({ t: performance.now() }));
    const { value } = await iterator.next();
    latencies[i] = performance.now() - (value!.json() as { t: number }).t;
  }
  const rate = pings / ((performance.now() - started) / 1000);
  subscription.unsubscribe();
  await nc.close();
  return { rate, latencies };
}

/** Round-trip latency and a stream run of the ZeroMQ adapter beside raw zeromq, memory and NATS core. */
export async function runZeroMqBench(options: ZeroMqBenchOptions = {}): Promise<BenchRow[]> {
  const pings = options.pings ?? 5_000;
  const messages = options.messages ?? 50_000;
  const rows: BenchRow[] = [];

  const raw = await rawZeroMq(pings);
  rows.push(row(ROUND_TRIP, 'raw zeromq (ROUTER→DEALER)', raw, 'one TCP hop, JSON payload, no acks'));
  const pair = await zeroMqPair();
  try {
    rows.push(row(ROUND_TRIP, 'omniqueue zeromq', await omniRoundTrip(pair.producer, pair.consumer, pings), 'publisher process → peer handler over one TCP hop, ack back', raw));
  } finally {
    await pair.close();
  }
  const memory = new Broker(new MemoryAdapter(), { logger: silentLogger, tracing: false });
  await memory.init();
  try {
    rows.push(row(ROUND_TRIP, 'omniqueue memory', await omniRoundTrip(memory, memory, pings), 'in process, no network: the floor', raw));
  } finally {
    await memory.close();
  }
  const nats = await natsCore(pings);
  rows.push(
    nats
      ? row(ROUND_TRIP, 'raw NATS core (reference)', nats, 'publisher → nats-server → subscriber: two TCP hops, no acks', raw)
      : { name: ROUND_TRIP, client: 'raw NATS core (reference)', throughput: 0, note: 'not run: no NATS at 127.0.0.1:4222' },
  );

  const rounds = options.rounds ?? benchRounds();
  await rawZeroMqAcked(2_000, 64); // warm-up
  const stream = await alternate(rounds, {
    raw: () => rawZeroMqAcked(messages, 64),
    omni: async () => {
      const streamPair = await zeroMqPair();
      try {
        return await omniStream(streamPair.producer, streamPair.consumer, messages);
      } finally {
        await streamPair.close();
      }
    },
  });
  rows.push(medianRow(STREAM, 'raw zeromq (ROUTER→DEALER)', stream.raw!, undefined, `${messages.toLocaleString('en-US')} messages, credit 64, acks batched per tick`));
  rows.push(medianRow(STREAM, 'omniqueue zeromq', stream.omni!, stream.raw, 'concurrency 64, credit 64, every message acked'));
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  console.log(renderTable(await runZeroMqBench()));
}
