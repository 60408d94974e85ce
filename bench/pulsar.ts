/**
 * Pulsar benchmark: OmniQueue's Pulsar adapter against a raw client of the same WebSocket API
 * (`ws`, hand-written JSON frames) on the same standalone broker, in one run. Both sides publish
 * with the same pipelining window, unbatched, and consume one Shared subscription with the same
 * queue size, acking every message.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { PulsarAdapter } from '../adapters/pulsar/PulsarAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { startPulsar } from '../test/brokers/pulsar.js';
import { quantile, type BenchRow } from './stats.js';

/** Options of the Pulsar benchmark. */
export interface PulsarBenchOptions {
  /** Messages per throughput run. Default 20 000. */
  readonly messages?: number;
  /** Round trips for the latency run. Default 500. */
  readonly pings?: number;
  /** Publishes in flight at once, and the consumer's queue size. Default 500 / 64. */
  readonly window?: number;
  readonly prefetch?: number;
}

interface Sample {
  readonly t: number;
}

interface Run {
  readonly rate: number;
  readonly latencies: Float64Array;
}

const run = randomBytes(3).toString('hex');

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function createSubscription(url: string, topic: string, group: string): Promise<void> {
  const base = `${url}/admin/v2/persistent/public/default/${topic}`;
  await fetch(base, { method: 'PUT' });
  await fetch(`${base}/subscription/${group}`, { method: 'PUT' });
}

/** Raw WebSocket client: a producer with `window` sends in flight, a push-mode Shared consumer acking each. */
async function rawRun(url: string, topic: string, messages: number, window: number, prefetch: number): Promise<Run> {
  const ws = url.replace(/^http/, 'ws');
  await createSubscription(url, topic, 'g');
  const consumer = await open(`${ws}/ws/v2/consumer/persistent/public/default/${topic}/g?subscriptionType=Shared&receiverQueueSize=${prefetch}`);
  const producer = await open(`${ws}/ws/v2/producer/persistent/public/default/${topic}?batchingEnabled=false`);
  const latencies = new Float64Array(messages);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  consumer.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { messageId: string; payload: string };
    const body = JSON.parse(Buffer.from(message.payload, 'base64').toString('utf8')) as Sample;
    consumer.send(JSON.stringify({ messageId: message.messageId }));
    latencies[handled++] = performance.now() - body.t;
    if (handled === messages) done();
  });
  let acked = 0;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  producer.on('message', (data) => {
    const ack = JSON.parse(data.toString()) as { result: string };
    if (ack.result !== 'ok') throw new Error(`raw publish refused: ${ack.result}`);
    acked++;
    inFlight--;
    if (wake) {
      wake();
      wake = undefined;
    }
  });
  const started = performance.now();
  for (let i = 0; i < messages; i++) {
    while (inFlight >= window) await new Promise<void>((resolve) => (wake = resolve));
    inFlight++;
    const payload = Buffer.from(JSON.stringify({ t: performance.now() })).toString('base64');
    producer.send(JSON.stringify({ payload, properties: { 'content-type': 'application/json' }, context: String(i) }));
  }
  await finished;
  const rate = messages / ((performance.now() - started) / 1000);
  if (acked < messages) await new Promise((resolve) => setTimeout(resolve, 100));
  producer.close();
  consumer.close();
  return { rate, latencies };
}

/** OmniQueue: publish with the same window, subscribe with concurrency = prefetch. */
async function omniRun(url: string, topic: string, messages: number, window: number, prefetch: number): Promise<Run> {
  const broker = new Broker(new PulsarAdapter({ url }), { logger: silentLogger });
  await broker.init();
  const latencies = new Float64Array(messages);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await broker.subscribe<Sample>(
    topic,
    (message) => {
      latencies[handled++] = performance.now() - message.body.t;
      if (handled === messages) done();
    },
    'g',
    { ensure: true, concurrency: prefetch },
  );
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const started = performance.now();
  for (let i = 0; i < messages; i++) {
    while (inFlight >= window) await new Promise<void>((resolve) => (wake = resolve));
    inFlight++;
    void broker.publish(topic, { body: { t: performance.now() } }).finally(() => {
      inFlight--;
      if (wake) {
        wake();
        wake = undefined;
      }
    });
  }
  await finished;
  const rate = messages / ((performance.now() - started) / 1000);
  await broker.close();
  return { rate, latencies };
}

/** One message at a time: publish, wait until the handler has it. */
async function omniPing(url: string, topic: string, pings: number): Promise<Run> {
  const broker = new Broker(new PulsarAdapter({ url }), { logger: silentLogger });
  await broker.init();
  const latencies = new Float64Array(pings);
  let resolveOne!: () => void;
  let count = 0;
  await broker.subscribe<Sample>(topic, (message) => {
    latencies[count] = performance.now() - message.body.t;
    resolveOne();
  }, 'g', { ensure: true });
  const started = performance.now();
  for (; count < pings; count++) {
    const handled = new Promise<void>((resolve) => (resolveOne = resolve));
    await broker.publish(topic, { body: { t: performance.now() } });
    await handled;
  }
  const rate = pings / ((performance.now() - started) / 1000);
  await broker.close();
  return { rate, latencies };
}

async function rawPing(url: string, topic: string, pings: number): Promise<Run> {
  const ws = url.replace(/^http/, 'ws');
  await createSubscription(url, topic, 'g');
  const consumer = await open(`${ws}/ws/v2/consumer/persistent/public/default/${topic}/g?subscriptionType=Shared&receiverQueueSize=16`);
  const producer = await open(`${ws}/ws/v2/producer/persistent/public/default/${topic}?batchingEnabled=false`);
  const latencies = new Float64Array(pings);
  let resolveOne!: () => void;
  let resolveAck!: () => void;
  let count = 0;
  consumer.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { messageId: string; payload: string };
    const body = JSON.parse(Buffer.from(message.payload, 'base64').toString('utf8')) as Sample;
    consumer.send(JSON.stringify({ messageId: message.messageId }));
    latencies[count] = performance.now() - body.t;
    resolveOne();
  });
  producer.on('message', () => resolveAck());
  const started = performance.now();
  for (; count < pings; count++) {
    const handled = new Promise<void>((resolve) => (resolveOne = resolve));
    const acked = new Promise<void>((resolve) => (resolveAck = resolve));
    producer.send(JSON.stringify({ payload: Buffer.from(JSON.stringify({ t: performance.now() })).toString('base64'), properties: {}, context: String(count) }));
    await acked;
    await handled;
  }
  const rate = pings / ((performance.now() - started) / 1000);
  producer.close();
  consumer.close();
  return { rate, latencies };
}

/** Pulsar end to end (publish → handler → ack) through OmniQueue and through a raw WebSocket client, same broker, same run. */
export async function runPulsarBench(options: PulsarBenchOptions = {}): Promise<BenchRow[]> {
  const url = await startPulsar();
  const messages = options.messages ?? 20_000;
  const pings = options.pings ?? 500;
  const window = options.window ?? 500;
  const prefetch = options.prefetch ?? 64;
  const rows: BenchRow[] = [];
  const scenario = `pulsar publish→handle→ack (${messages.toLocaleString('en-US')} msgs, ${window} publishes in flight, prefetch ${prefetch})`;
  // Warm-up of the broker's JIT and topic loading, not measured.
  await rawRun(url, `bench_warm_${run}`, 2_000, window, prefetch);
  const raw = await rawRun(url, `bench_raw_${run}`, messages, window, prefetch);
  rows.push({ name: scenario, client: 'raw ws (WebSocket API)', throughput: raw.rate, p50Ms: quantile(raw.latencies, 0.5), p99Ms: quantile(raw.latencies, 0.99), note: 'hand-written frames, push-mode consumer' });
  const omni = await omniRun(url, `bench_oq_${run}`, messages, window, prefetch);
  rows.push({ name: scenario, client: 'omniqueue', throughput: omni.rate, p50Ms: quantile(omni.latencies, 0.5), p99Ms: quantile(omni.latencies, 0.99), ratio: omni.rate / raw.rate, note: 'pull-mode consumer with permits, ids/headers/tracing/metrics' });
  const pingScenario = `pulsar round trip, one at a time (${pings})`;
  const rawOne = await rawPing(url, `bench_rawping_${run}`, pings);
  rows.push({ name: pingScenario, client: 'raw ws (WebSocket API)', throughput: rawOne.rate, p50Ms: quantile(rawOne.latencies, 0.5), p99Ms: quantile(rawOne.latencies, 0.99) });
  const omniOne = await omniPing(url, `bench_oqping_${run}`, pings);
  rows.push({ name: pingScenario, client: 'omniqueue', throughput: omniOne.rate, p50Ms: quantile(omniOne.latencies, 0.5), p99Ms: quantile(omniOne.latencies, 0.99), ratio: omniOne.rate / rawOne.rate });
  return rows;
}

// `npx tsx bench/pulsar.ts` runs this benchmark alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  console.log(renderTable(await runPulsarBench()));
}
