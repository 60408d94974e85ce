/**
 * NATS JetStream interop with plain nats.js code, both ways: a plain producer's JSON body and
 * native headers reach an OmniQueue handler; an OmniQueue publish is read by a plain JetStream
 * consumer as JSON bytes with native headers (and `Nats-Msg-Id`); a non-JSON body from a plain
 * producer is dead-lettered with a reason while the subscription keeps running.
 */
import { randomBytes } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsAdapter, streamName } from '../../adapters/nats/NatsAdapter.js';
import { Broker, deadLetterTopicOf } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { WireHeader } from '../../runtime/wire.js';
import { waitFor } from '../conformance/waitFor.js';
import { NATS_LOCK, NATS_SERVERS, natsMissing } from '../brokers/nats.js';
import { holdFileLock } from '../brokers/rabbitmq.js';

const missing = await natsMissing();
// Shared lock: the fault test's server restart waits until this file is done.
const lock = missing === undefined ? await holdFileLock(NATS_LOCK, 'shared') : undefined;
afterAll(() => lock?.[Symbol.asyncDispose]());
const run = randomBytes(4).toString('hex');
const topics: string[] = [];
const name = (label: string): string => {
  const topic = `nats_interop_${label}_${run}`;
  topics.push(topic, deadLetterTopicOf(topic, 'billing'), deadLetterTopicOf(deadLetterTopicOf(topic, 'billing'), 'dlq'));
  return topic;
};

describe.skipIf(missing !== undefined)(`nats interop with plain nats.js${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let broker: Broker;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    broker = new Broker(new NatsAdapter({ servers: NATS_SERVERS, logger: silentLogger }), { logger: silentLogger, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    await broker.init();
    nc = await connect({ servers: NATS_SERVERS });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await broker?.close();
    for (const topic of topics) await jsm?.streams.delete(streamName(topic)).catch(() => false);
    await nc?.close();
  });

  it('a plain nats.js producer (JSON body, NATS headers) reaches the handler intact', async () => {
    const topic = name('in');
    const received: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), 'billing', { ensure: true });
    const body = { orderId: 7, lines: [{ sku: 'A', qty: 1 }], note: 'ünïcode' };
    const h = natsHeaders();
    h.set('x-tenant', 'acme');
    h.set('content-type', 'application/json');
    await js.publish(topic, JSON.stringify(body), { headers: h, msgID: 'legacy-42' });
    await waitFor(() => received.length >= 1, 10_000, 'the plain message');
    const [message] = received;
    expect(message!.body).toEqual(body);
    expect(message!.id).toBe('legacy-42');
    expect(message!.attempt).toBe(1);
    expect(message!.headers).toMatchObject({ 'x-tenant': 'acme' });
    expect(Math.abs(message!.publishedAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('an OmniQueue publish is read by a plain JetStream consumer as JSON bytes with native headers', async () => {
    const topic = name('out');
    await broker.publish(topic, { body: null }, { ensure: true }); // creates the stream
    await jsm.consumers.add(streamName(topic), { durable_name: 'plain', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
    const body = { orderId: 8, total: 12.5, tags: ['a', 'b'] };
    const { id } = await broker.publish(topic, { id: 'oq-1', body, key: 'customer-1', headers: { 'x-tenant': 'acme', 'x-n': 5 } });
    const consumer = await js.consumers.get(streamName(topic), 'plain');
    const message = await consumer.next({ expires: 5_000 });
    expect(message).not.toBeNull();
    message!.ack();
    expect(message!.subject).toBe(topic);
    expect(message!.json()).toEqual(body);
    expect(message!.headers?.get('Nats-Msg-Id')).toBe(id);
    expect(message!.headers?.get('x-tenant')).toBe('acme');
    expect(message!.headers?.get('x-n')).toBe('5');
    expect(message!.headers?.get('content-type')).toBe('application/json');
    expect(message!.headers?.get('omniqueue-key')).toBe('customer-1');
    expect(message!.headers?.get(WireHeader.Id)).toBe('oq-1');
  });

  it('the server drops a re-sent publish with the same id (Nats-Msg-Id)', async () => {
    const topic = name('dedupe');
    const received: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), 'billing', { ensure: true });
    await broker.publish(topic, { id: 'same-id', body: 1 });
    await broker.publish(topic, { id: 'same-id', body: 1 });
    await broker.publish(topic, { id: 'other-id', body: 2 });
    await waitFor(() => received.length >= 2, 10_000, 'two distinct messages');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.map((message) => message.id)).toEqual(['same-id', 'other-id']);
  });

  it('a non-JSON body from a plain producer is dead-lettered with a reason, and the subscription keeps running', async () => {
    const topic = name('poison');
    const handled: unknown[] = [];
    await broker.subscribe(topic, (message) => void handled.push(message.body), 'billing', { ensure: true });
    const dead: Message[] = [];
    await broker.subscribe(deadLetterTopicOf(topic, 'billing'), (message) => void dead.push(message), 'dlq', { ensure: true, invalidJson: 'deliver-raw' });
    const h = natsHeaders();
    h.set('x-source', 'legacy');
    await js.publish(topic, '<order id="1"/>', { headers: h });
    await waitFor(() => dead.length >= 1, 10_000, 'the poison message in the DLQ');
    expect(dead[0]!.headers[WireHeader.DlqReason]).toBe('decode-failed');
    expect(dead[0]!.headers[WireHeader.DlqError]).toMatch(/not valid JSON/);
    expect(dead[0]!.headers['x-source']).toBe('legacy');
    expect(Buffer.from(dead[0]!.body as Uint8Array).toString('utf8')).toBe('<order id="1"/>');
    await js.publish(topic, JSON.stringify({ ok: true }));
    await waitFor(() => handled.length >= 1, 10_000, 'the valid message after the poison one');
    expect(handled).toEqual([{ ok: true }]);
  });
});
