/**
 * Redis benchmarks: the Redis Streams and BullMQ adapters side by side with raw ioredis
 * (XADD / XREADGROUP / XACK) and raw BullMQ (Queue.add / Worker) code, in one run, with the same
 * message size and the same concurrency. Each scenario publishes N messages (at most `window`
 * in flight), then consumes them with `concurrency` handlers at once; msg/s per phase.
 *
 * Run alone: `npx tsx bench/redis.ts` (options: `--messages 20000 --bullmq-messages 5000`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BullMQAdapter } from '../adapters/bullmq/BullMQAdapter.js';
import { RedisStreamsAdapter } from '../adapters/redis-streams/RedisStreamsAdapter.js';
import type { Adapter } from '../runtime/contract.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { deleteKeys, ensureRedis, REDIS_URL } from '../test/brokers/redis.js';
import { alternate, benchRounds, medianRow, renderTable, type BenchRow } from './stats.js';

/** Options of {@link runRedisBench}. */
export interface RedisBenchOptions {
  /** Messages per Redis Streams run. Default 20,000. */
  readonly messages?: number;
  /** Messages per BullMQ run (BullMQ does far more work per job). Default 5,000. */
  readonly bullmqMessages?: number;
  /** Size of the JSON body in bytes (approximately). Default 256. */
  readonly payloadBytes?: number;
  /** Handlers at once (OmniQueue concurrency = prefetch; raw COUNT / Worker concurrency). Default 16. */
  readonly concurrency?: number;
  /** Publishes in flight at once. Default 200. */
  readonly window?: number;
  /** Alternated raw/OmniQueue rounds; the table shows medians. Default `BENCH_ROUNDS` or 3. */
  readonly rounds?: number;
}

interface Phases {
  readonly publish: number;
  readonly consume: number;
}

const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };

/** Runs every Redis scenario and returns its rows (raw first, then OmniQueue with the ratio). */
export async function runRedisBench(options: RedisBenchOptions = {}): Promise<BenchRow[]> {
  await ensureRedis();
  const settings = {
    messages: options.messages ?? 20_000,
    bullmqMessages: options.bullmqMessages ?? 5_000,
    concurrency: options.concurrency ?? 16,
    window: options.window ?? 200,
    filler: 'x'.repeat(Math.max(0, (options.payloadBytes ?? 256) - 40)),
  };
  const prefix = `omniqueue-bench:${randomBytes(4).toString('hex')}:`;
  const rows: BenchRow[] = [];
  const note = `${settings.concurrency} at once, ~${options.payloadBytes ?? 256} B JSON`;
  const rounds = options.rounds ?? benchRounds();
  try {
    // Warm-up of both sides (JIT, connections, Lua script cache).
    await rawStreamsRun(`${prefix}warm`, 2_000, settings);
    await omniqueueRun(new RedisStreamsAdapter({ url: REDIS_URL, prefix: `${prefix}oqwarm:` }), 2_000, settings);
    const streams = await alternate(rounds, {
      raw: (round) => rawStreamsRun(`${prefix}raw${round}`, settings.messages, settings),
      omni: (round) => omniqueueRun(new RedisStreamsAdapter({ url: REDIS_URL, prefix: `${prefix}oq${round}:` }), settings.messages, settings),
    });
    pushPair(rows, 'redis-streams', 'raw ioredis XADD / XREADGROUP / XACK', streams.raw!, streams.omni!, `${settings.messages} msgs, ${note}, same fields`);
    const bull = await alternate(rounds, {
      raw: (round) => rawBullRun(`${prefix}bull${round}`, settings.bullmqMessages, settings),
      omni: (round) => omniqueueRun(new BullMQAdapter({ url: REDIS_URL, prefix: `${prefix}oqbull${round}` }), settings.bullmqMessages, settings),
    });
    pushPair(rows, 'bullmq', 'raw BullMQ Queue.add / Worker', bull.raw!, bull.omni!, `${settings.bullmqMessages} msgs, ${note}, 1 group`);
  } finally {
    await deleteKeys(prefix);
  }
  return rows;
}

function pushPair(rows: BenchRow[], name: string, rawClient: string, raw: readonly Phases[], omni: readonly Phases[], note: string): void {
  for (const phase of ['publish', 'consume'] as const) {
    const scenario = `${name} ${phase === 'publish' ? 'publish (confirmed)' : 'consume (handle → ack)'}`;
    const rawRuns = raw.map((run) => ({ rate: run[phase] }));
    rows.push(medianRow(scenario, rawClient, rawRuns, undefined, note));
    rows.push(medianRow(scenario, 'omniqueue', omni.map((run) => ({ rate: run[phase] })), rawRuns, note));
  }
}

interface RunSettings {
  readonly concurrency: number;
  readonly window: number;
  readonly filler: string;
}

function body(i: number, filler: string): { i: number; t: number; filler: string } {
  return { i, t: Date.now(), filler };
}

/** Publishes `count` with at most `window` in flight; returns msg/s. */
async function publishAll(count: number, window: number, publish: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(window, count) }, async () => {
      while (next < count) await publish(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function omniqueueRun(adapter: Adapter, count: number, settings: RunSettings): Promise<Phases> {
  const broker = new Broker(adapter, { logger: silentLogger });
  await broker.init();
  try {
    await (await broker.subscribe('bench', () => {}, 'g', { ensure: true })).close();
    const publish = await publishAll(count, settings.window, (i) => broker.publish('bench', { body: body(i, settings.filler) }));
    let handled = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const started = performance.now();
    await broker.subscribe<{ i: number }>(
      'bench',
      (message) => {
        if (typeof message.body.i !== 'number') throw new Error('bad body');
        if (++handled === count) done();
      },
      'g',
      { concurrency: settings.concurrency },
    );
    await finished;
    const consume = count / ((performance.now() - started) / 1000);
    return { publish, consume };
  } finally {
    await broker.close();
  }
}

async function rawStreamsRun(stream: string, count: number, settings: RunSettings): Promise<Phases> {
  const command = new Redis({ ...connection, enableAutoPipelining: true });
  const blocking = new Redis(connection);
  try {
    await command.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    // The same fields OmniQueue writes: body, content-type, omniqueue-id, omniqueue-published-at.
    const publish = await publishAll(count, settings.window, (i) =>
      command.xadd(stream, '*', 'body', JSON.stringify(body(i, settings.filler)), 'content-type', 'application/json', 'omniqueue-id', randomUUID(), 'omniqueue-published-at', String(Date.now())),
    );
    const started = performance.now();
    let handled = 0;
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const acks: Promise<unknown>[] = [];
    while (handled < count) {
      const credit = settings.concurrency - inFlight;
      if (credit <= 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const reply = (await blocking.xreadgroup('GROUP', 'g', 'c', 'COUNT', credit, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          inFlight++;
          const parsed = JSON.parse(fields[1]!) as { i: number };
          if (typeof parsed.i !== 'number') throw new Error('bad body');
          acks.push(
            command.xack(stream, 'g', id).then(() => {
              inFlight--;
              handled++;
              wake?.();
              wake = undefined;
            }),
          );
        }
      }
      if (acks.length > 10_000) await Promise.all(acks.splice(0));
    }
    await Promise.all(acks);
    const consume = count / ((performance.now() - started) / 1000);
    return { publish, consume };
  } finally {
    command.disconnect();
    blocking.disconnect();
  }
}

async function rawBullRun(prefix: string, count: number, settings: RunSettings): Promise<Phases> {
  const queue = new Queue('bench.g', { connection, prefix });
  try {
    const publish = await publishAll(count, settings.window, (i) => queue.add('bench', body(i, settings.filler), { removeOnComplete: true }));
    let handled = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const started = performance.now();
    const worker = new Worker(
      'bench.g',
      async (job) => {
        if (typeof (job.data as { i: unknown }).i !== 'number') throw new Error('bad body');
      },
      { connection, prefix, concurrency: settings.concurrency },
    );
    worker.on('completed', () => {
      if (++handled === count) done();
    });
    await finished;
    const consume = count / ((performance.now() - started) / 1000);
    await worker.close();
    return { publish, consume };
  } finally {
    await queue.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { messages: { type: 'string' }, 'bullmq-messages': { type: 'string' }, concurrency: { type: 'string' } } });
  const rows = await runRedisBench({
    messages: values.messages ? Number(values.messages) : undefined,
    bullmqMessages: values['bullmq-messages'] ? Number(values['bullmq-messages']) : undefined,
    concurrency: values.concurrency ? Number(values.concurrency) : undefined,
  });
  console.log(renderTable(rows));
}
