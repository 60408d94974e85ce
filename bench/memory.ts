import { EventEmitter } from 'node:events';
import { MemoryAdapter } from '../adapters/memory/MemoryAdapter.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { alternate, benchRounds, median, medianRow, type BenchRow, type TimedRun } from './stats.js';

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
  /** Alternated rounds per scenario; the table shows medians. Default `BENCH_ROUNDS` or 3. */
  readonly rounds?: number;
}

/** A timed run with the process CPU time (user + system, every thread) it took per message. */
interface CpuTimedRun extends TimedRun {
  readonly cpuMicrosPerMessage: number;
}

/**
 * Runs `run` and adds its CPU time per message: on a machine shared with other jobs, CPU time moves
 * far less from run to run than msg/s does.
 */
async function measuringCpu(messages: number, run: () => Promise<TimedRun>): Promise<CpuTimedRun> {
  const before = process.cpuUsage();
  const timed = await run();
  const used = process.cpuUsage(before);
  return { ...timed, cpuMicrosPerMessage: (used.user + used.system) / messages };
}

/** A row's note with the median CPU time per message of its runs. */
function cpuNote(note: string, runs: readonly CpuTimedRun[]): string {
  return `${note}; CPU ${median(runs.map((run) => run.cpuMicrosPerMessage)).toFixed(2)} µs/msg`;
}

async function throughput(broker: Broker, messages: number, concurrency: number): Promise<TimedRun> {
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

async function pingPong(broker: Broker, pings: number): Promise<TimedRun> {
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

async function rawEmitter(messages: number): Promise<TimedRun> {
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

/**
 * The embedded broker, end to end (publish → handler → ack), beside an in-process baseline. Every
 * scenario runs `rounds` times in an order that alternates from round to round; the table gives
 * medians, and the note adds the median CPU time per message and lists every run.
 */
export async function runMemoryBench(options: MemoryBenchOptions = {}): Promise<BenchRow[]> {
  const messages = options.messages ?? 200_000;
  const pings = options.pings ?? 20_000;
  const rounds = options.rounds ?? benchRounds();
  const scenario = 'memory publish→handle→ack';

  const runs = await alternate(rounds, {
    raw: () => measuringCpu(messages, () => rawEmitter(messages)),
    defaults: () => measuringCpu(messages, () => throughput(new Broker(new MemoryAdapter(), { logger: silentLogger }), messages, 64)),
    passThrough: () =>
      measuringCpu(messages, () => throughput(new Broker(new MemoryAdapter({ passThrough: true }), { logger: silentLogger, tracing: false }), messages, 64)),
  });
  const pingRuns = await alternate(rounds, { ping: () => measuringCpu(pings, () => pingPong(new Broker(new MemoryAdapter(), { logger: silentLogger }), pings)) });
  return [
    medianRow(scenario, 'raw (EventEmitter + JSON)', runs.raw!, undefined, cpuNote('in-process floor: serialise, emit, parse', runs.raw!)),
    medianRow(scenario, 'omniqueue (defaults)', runs.defaults!, runs.raw, cpuNote('JSON copy per message, OTel API (no SDK), metrics', runs.defaults!)),
    medianRow(scenario, 'omniqueue (passThrough, no tracing)', runs.passThrough!, runs.raw, cpuNote('body object handed over, no span objects', runs.passThrough!)),
    medianRow('memory round trip, one at a time', 'omniqueue (defaults)', pingRuns.ping!, undefined, cpuNote('latency of an unloaded publish→handler', pingRuns.ping!)),
  ];
}
