/**
 * ActiveMQ Artemis over AMQP 1.0: the OmniQueue adapter beside raw rhea-promise on the same broker
 * (`test/brokers/artemis.sh`, 127.0.0.1:5673): a one-at-a-time round trip and a durable stream.
 *
 *   npx tsx bench/artemis.ts        or as part of `npm run bench`
 */
import { randomUUID } from 'node:crypto';
import { Connection, message as rheaMessage, ReceiverEvents, type ConnectionOptions, type EventContext } from 'rhea-promise';
import { ArtemisAdapter } from '../adapters/artemis/ArtemisAdapter.js';
import { ArtemisManagement } from '../adapters/artemis/ArtemisManagement.js';
import { fqqn, queueName } from '../adapters/artemis/names.js';
import { Broker } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import { ARTEMIS, artemisAnswers } from '../test/brokers/artemis.js';
import { quantile, type BenchRow } from './stats.js';

/** Options of the Artemis benchmark. */
export interface ArtemisBenchOptions {
  /** Round trips per latency run. */
  readonly pings?: number;
  /** Messages per stream run. */
  readonly messages?: number;
}

interface Run {
  readonly rate: number;
  readonly latencies: Float64Array;
}

function row(name: string, client: string, run: Run, note: string, baseline?: Run): BenchRow {
  return { name, client, throughput: run.rate, p50Ms: quantile(run.latencies, 0.5), p99Ms: quantile(run.latencies, 0.99), ...(baseline ? { ratio: run.rate / baseline.rate } : {}), note };
}

/** Raw rhea: durable sends awaited for `accepted`, a receiver with credit 64 accepting each message. */
async function raw(count: number, oneAtATime: boolean): Promise<Run> {
  const topic = `bench_raw_${randomUUID().slice(0, 8)}`;
  const connection = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false, noDelay: true } as ConnectionOptions);
  await connection.open();
  const management = new ArtemisManagement(connection);
  await management.invoke('createQueue', [JSON.stringify({ name: queueName(topic, 'g'), address: topic, 'routing-type': 'MULTICAST', durable: true, 'auto-create-address': true }), true]);
  const latencies = new Float64Array(count);
  let received = 0;
  let wake: (() => void) | undefined;
  const receiver = await connection.createReceiver({ source: { address: fqqn(topic, 'g') }, credit_window: 64, autoaccept: true });
  receiver.on(ReceiverEvents.message, (context: EventContext) => {
    const body = context.message!.body as { content: Buffer };
    latencies[received++] = performance.now() - (JSON.parse(body.content.toString()) as { t: number }).t;
    wake?.();
  });
  const sender = await connection.createAwaitableSender({ target: { address: topic, capabilities: ['topic'] } });
  const started = performance.now();
  const send = (): Promise<unknown> => sender.send({ durable: true, body: rheaMessage.data_section(Buffer.from(JSON.stringify({ t: performance.now() }))) });
  if (oneAtATime) {
    for (let i = 0; i < count; i++) {
      const arrived = new Promise<void>((resolve) => (wake = resolve));
      await send();
      await arrived;
    }
  } else {
    for (let sent = 0; sent < count; sent += 200) {
      await Promise.all(Array.from({ length: Math.min(200, count - sent) }, send));
    }
    while (received < count) await new Promise<void>((resolve) => (wake = resolve));
  }
  const rate = count / ((performance.now() - started) / 1000);
  await receiver.close();
  await management.invoke('destroyQueue', [queueName(topic, 'g')]).catch(() => {});
  await connection.close();
  return { rate, latencies };
}

async function omni(count: number, oneAtATime: boolean): Promise<Run> {
  const topic = `bench_oq_${randomUUID().slice(0, 8)}`;
  const adapter = new ArtemisAdapter(ARTEMIS);
  const broker = new Broker(adapter, { logger: silentLogger, tracing: false });
  await broker.init();
  const latencies = new Float64Array(count);
  let received = 0;
  let wake: (() => void) | undefined;
  await broker.subscribe<{ t: number }>(
    topic,
    (message) => {
      latencies[received++] = performance.now() - message.body.t;
      wake?.();
    },
    'g',
    { ensure: true, concurrency: 64 },
  );
  const started = performance.now();
  if (oneAtATime) {
    for (let i = 0; i < count; i++) {
      const arrived = new Promise<void>((resolve) => (wake = resolve));
      await broker.publish(topic, { body: { t: performance.now() } });
      await arrived;
    }
  } else {
    for (let sent = 0; sent < count; sent += 200) {
      await Promise.all(Array.from({ length: Math.min(200, count - sent) }, () => broker.publish(topic, { body: { t: performance.now() } })));
    }
    while (received < count) await new Promise<void>((resolve) => (wake = resolve));
  }
  const rate = count / ((performance.now() - started) / 1000);
  await broker.close();
  return { rate, latencies };
}

/** Round trip and stream of the Artemis adapter beside raw rhea-promise, on the test broker. */
export async function runArtemisBench(options: ArtemisBenchOptions = {}): Promise<BenchRow[]> {
  if (!(await artemisAnswers())) throw new Error('no Artemis at 127.0.0.1:5673 (bash test/brokers/artemis.sh start)');
  const pings = options.pings ?? 1_000;
  const messages = options.messages ?? 10_000;
  const rows: BenchRow[] = [];
  const trip = 'round trip, one at a time (durable)';
  const rawTrip = await raw(pings, true);
  rows.push(row(trip, 'raw rhea-promise', rawTrip, 'send awaited for accepted, autoaccept receiver'));
  rows.push(row(trip, 'omniqueue artemis', await omni(pings, true), 'publish → handler → accept', rawTrip));
  const stream = `stream of ${messages.toLocaleString('en-US')} durable messages`;
  const rawStream = await raw(messages, false);
  rows.push(row(stream, 'raw rhea-promise', rawStream, '200 sends in flight, credit 64'));
  rows.push(row(stream, 'omniqueue artemis', await omni(messages, false), '200 publishes in flight, concurrency/credit 64', rawStream));
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./stats.js');
  console.log(renderTable(await runArtemisBench()));
}
