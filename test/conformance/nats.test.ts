/**
 * Conformance runner for the NATS JetStream adapter on the machine's nats-server (127.0.0.1:4222).
 * The foreign publisher is plain nats.js: a raw body and native NATS headers published to the
 * topic's subject, no OmniQueue metadata. Every stream the run created is deleted afterwards.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe } from 'vitest';
import { NatsAdapter, streamName } from '../../adapters/nats/NatsAdapter.js';
import type { EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { Broker } from '../../runtime/Broker.js';
import { NATS_LOCK, NATS_SERVERS, natsMissing } from '../brokers/nats.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { runConformance } from './runConformance.js';

const missing = await natsMissing();
// Shared lock: the fault test's server restart waits until this file is done.
const lock = missing === undefined ? await holdFileLock(NATS_LOCK, 'shared') : undefined;
afterAll(() => lock?.[Symbol.asyncDispose]());
const topics = new Set<string>();
let plain: NatsConnection | undefined;

/** The adapter, remembering every topic it touched so afterAll can delete its stream. */
class TrackedNatsAdapter extends NatsAdapter {
  override ensure(request: EnsureRequest): Promise<void> {
    topics.add(request.topic);
    return super.ensure(request);
  }

  override send(message: WireMessage): Promise<void> {
    topics.add(message.topic);
    return super.send(message);
  }
}

afterAll(async () => {
  if (missing !== undefined) return;
  plain ??= await connect({ servers: NATS_SERVERS });
  const jsm = await jetstreamManager(plain);
  for (const topic of topics) await jsm.streams.delete(streamName(topic)).catch(() => false);
  await plain.close();
}, 60_000);

describe.skipIf(missing !== undefined)(`nats${missing ? ` — skipped: ${missing}` : ''}`, () => {
  runConformance({
    name: 'nats jetstream',
    features: new NatsAdapter().features,
    async connect(options) {
      const broker = new Broker(new TrackedNatsAdapter({ servers: NATS_SERVERS, logger: options?.logger }), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      plain ??= await connect({ servers: NATS_SERVERS });
      const h = natsHeaders();
      for (const [name, value] of Object.entries(headers)) h.set(name, value);
      await jetstream(plain).publish(topic, payload, { headers: h });
    },
  });
});
