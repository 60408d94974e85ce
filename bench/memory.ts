import { EventEmitter } from 'node:events';
import { MemoryAdapter } from '../adapters/memory/MemoryAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { quantile, type BenchRow } from './stats.js';

/** Most messages published but not yet handled: the producer waits beyond it, as behind a broker's flow control. */
const WINDOW = 5_000;

interface Sample {
  readonly t: number;
}

/** Options of the memory benchmark. */
export interface MemoryBenchOptions {
  /** Messages per throughput run. */
  readonly messages?: number;
  /** Round trips for the latency run. */
  readonly pings?: number;
}

async function throughput(broker: Broker, messages: number, concurrency: number): Promise<{ rate: number; latencies: Float64Array }> {
  await broker.init();
  const latencies = new Float64Array(messages);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  let wake: (() => void) | undefined;
  await broker.subscribe<Sample>(
    'bench',
    (msg) => {
      latencies[handled++] = performance.now() - msg.body.t;
      if (handled === messages) done();
      if (wake && handled % 1_000 === 0) {
        wake();
        wake = undefined;
      }
    },
    'g',
    { ensure: true, concurrency },
  );
  const started = performance.now();
  const batch = 1_000;
  for (let sent = 0; sent < messages; sent += batch) {
    while (sent - handled > WINDOW) await new Promise<void>((resolve) => (wake = resolve));
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < batch && sent + i < messages; i++) pending.push(broker.publish('bench', { body: { t: performance.now() } }));
    await Promise.all(pending);
  }
  await finished;
  const rate = messages / ((performance.now() - started) / 1000);
  await broker.close();
  return { rate, latencies };
}

async function pingPong(broker: Broker, pings: number): Promise<{ rate: number; latencies: Float64Array }> {
  await broker.init();
  const latencies = new Float64Array(pings);
  let resolveOne!: () => void;
  await broker.subscribe<Sample>('ping', (msg) => {
    latencies[count] = performance.now() - msg.body.t;
    resolveOne();
  }, 'g', { ensure: true });
  let count = 0;
  const started = performance.now();
  for (; count < pings; count++) {
    const handled = new Promise<void>((resolve) => (resolveOne = resolve));
    await broker.publish('ping', { body: { t: performance.now() } });
    await handled;
  }
  const rate = pings / ((performance.now() - started) / 1000);
  await broker.close();
  return { rate, latencies };
}

async function rawEmitter(messages: number): Promise<{ rate: number; latencies: Float64Array }> {
  const emitter = new EventEmitter();
  const latencies = new Float64Array(messages);
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  emitter.on('bench', (payload: string) => {
    const body = JSON.parse(payload) as Sample;
    latencies[handled++] = performance.now() - body.t;
    if (handled === messages) done();
  });
  const started = performance.now();
  for (let i = 0; i < messages; i++) {
    const payload = JSON.stringify({ t: performance.now() });
    queueMicrotask(() => emitter.emit('bench', payload));
    if (i % 1_000 === 999) await Promise.resolve();
  }
  await finished;
  return { rate: messages / ((performance.now() - started) / 1000), latencies };
}

/** The embedded broker, end to end (publish → handler → ack), beside an in-process baseline. */
export async function runMemoryBench(options: MemoryBenchOptions = {}): Promise<BenchRow[]> {
  const messages = options.messages ?? 200_000;
  const pings = options.pings ?? 20_000;
  const rows: BenchRow[] = [];
  const scenario = 'memory publish→handle→ack';

  const raw = await rawEmitter(messages);
  rows.push({ name: scenario, client: 'raw (EventEmitter + JSON)', throughput: raw.rate, p50Ms: quantile(raw.latencies, 0.5), p99Ms: quantile(raw.latencies, 0.99), note: 'in-process floor: serialise, emit, parse' });

  const variants: { client: string; adapter: () => MemoryAdapter; tracing: boolean; note: string }[] = [
    { client: 'omniqueue (defaults)', adapter: () => new MemoryAdapter(), tracing: true, note: 'JSON copy per message, OTel API (no SDK), metrics' },
    { client: 'omniqueue (passThrough, no tracing)', adapter: () => new MemoryAdapter({ passThrough: true }), tracing: false, note: 'body object handed over, no span objects' },
  ];
  for (const variant of variants) {
    const run = await throughput(new Broker(variant.adapter(), { logger: silentLogger, tracing: variant.tracing }), messages, 64);
    rows.push({ name: scenario, client: variant.client, throughput: run.rate, p50Ms: quantile(run.latencies, 0.5), p99Ms: quantile(run.latencies, 0.99), ratio: run.rate / raw.rate, note: variant.note });
  }
  const ping = await pingPong(new Broker(new MemoryAdapter(), { logger: silentLogger }), pings);
  rows.push({ name: 'memory round trip, one at a time', client: 'omniqueue (defaults)', throughput: ping.rate, p50Ms: quantile(ping.latencies, 0.5), p99Ms: quantile(ping.latencies, 0.99), note: 'latency of an unloaded publish→handler' });
  return rows;
}
