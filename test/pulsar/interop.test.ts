/**
 * Pulsar interop with plain WebSocket code (the `ws` package on Pulsar's documented producer and
 * consumer endpoints), both ways: a plain producer's JSON body, properties and key reach an
 * OmniQueue handler; an OmniQueue publish is read by a plain Shared consumer as JSON bytes with
 * native properties and the Pulsar key; a non-JSON body from a plain producer is dead-lettered with
 * a reason while the subscription keeps running; a delayed retry stays inside its group.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulsarAdapter } from '../../adapters/pulsar/PulsarAdapter.js';
import { Broker, deadLetterTopicOf } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { nack, type Message } from '../../runtime/message.js';
import { WireHeader } from '../../runtime/wire.js';
import { waitFor } from '../conformance/waitFor.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { PULSAR_LOCK, publishPlain, pulsarAvailable } from '../brokers/pulsar.js';

const url = await pulsarAvailable();
// Shared lock: the fault test's broker restart waits until this file is done.
const lock = url ? await holdFileLock(PULSAR_LOCK, 'shared') : undefined;
afterAll(() => lock?.[Symbol.asyncDispose]());
const run = randomBytes(4).toString('hex');
const name = (label: string): string => `pulsar_interop_${label}_${run}`;

interface PlainMessage {
  messageId: string;
  payload: string;
  properties: Record<string, string>;
  key?: string;
  redeliveryCount: number;
}

/** A plain Pulsar WebSocket consumer (Shared subscription, push mode) that acks what it reads. */
async function plainConsumer(topic: string, subscription: string): Promise<{ messages: PlainMessage[]; close(): void }> {
  const socket = new WebSocket(`${url!.replace(/^http/, 'ws')}/ws/v2/consumer/persistent/public/default/${topic}/${subscription}?subscriptionType=Shared`);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const messages: PlainMessage[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as PlainMessage;
    messages.push(message);
    socket.send(JSON.stringify({ messageId: message.messageId }));
  });
  return { messages, close: () => socket.close() };
}

describe.skipIf(!url)('pulsar interop with plain WebSocket clients', () => {
  let broker: Broker;

  beforeAll(async () => {
    broker = new Broker(new PulsarAdapter({ url }), { logger: silentLogger, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    await broker.init();
  });

  afterAll(async () => {
    await broker?.close();
  });

  it('a plain WebSocket producer (JSON body, properties, key) reaches the handler intact', async () => {
    const topic = name('in');
    const received: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), 'billing', { ensure: true });
    const body = { orderId: 7, lines: [{ sku: 'A', qty: 1 }], note: 'ünïcode' };
    const messageId = await publishPlain(url!, topic, new TextEncoder().encode(JSON.stringify(body)), { 'x-tenant': 'acme', 'content-type': 'application/json' }, 'customer-7');
    await waitFor(() => received.length >= 1, 10_000, 'the plain message');
    const [message] = received;
    expect(message!.body).toEqual(body);
    expect(message!.id).toBe(messageId); // no omniqueue-id: the Pulsar message id
    expect(message!.key).toBe('customer-7');
    expect(message!.attempt).toBe(1);
    expect(message!.headers).toMatchObject({ 'x-tenant': 'acme' });
    expect(Math.abs(message!.publishedAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('an OmniQueue publish is read by a plain WebSocket consumer as JSON bytes with native properties and key', async () => {
    const topic = name('out');
    const plain = await plainConsumer(topic, 'plain');
    try {
      const body = { orderId: 8, total: 12.5, tags: ['a', 'b'] };
      await broker.publish(topic, { id: 'oq-1', body, key: 'customer-1', headers: { 'x-tenant': 'acme', 'x-n': 5 } });
      await waitFor(() => plain.messages.length >= 1, 10_000, 'the OmniQueue message');
      const [message] = plain.messages;
      expect(JSON.parse(Buffer.from(message!.payload, 'base64').toString('utf8'))).toEqual(body);
      expect(message!.key).toBe('customer-1');
      expect(message!.properties).toMatchObject({ 'x-tenant': 'acme', 'x-n': '5', [WireHeader.Id]: 'oq-1', [WireHeader.ContentType]: 'application/json' });
      expect(Number(message!.properties[WireHeader.PublishedAt])).toBeGreaterThan(Date.now() - 60_000);
    } finally {
      plain.close();
    }
  });

  it('a non-JSON body from a plain producer is dead-lettered with a reason and the subscription keeps running', async () => {
    const topic = name('poison');
    const received: Message[] = [];
    const dead: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), 'billing', { ensure: true });
    await broker.subscribe(deadLetterTopicOf(topic, 'billing'), (message) => void dead.push(message), 'dlq', { ensure: true });
    await publishPlain(url!, topic, new TextEncoder().encode('{not json'), { 'content-type': 'application/json' });
    await publishPlain(url!, topic, new TextEncoder().encode('{"ok":true}'), { 'content-type': 'application/json' });
    await waitFor(() => dead.length >= 1 && received.length >= 1, 10_000, 'the dead letter and the good message');
    expect(received[0]!.body).toEqual({ ok: true });
    expect(dead[0]!.headers[WireHeader.DlqReason]).toBe('decode-failed');
  });

  it('a nack with a long delay goes through the group retry topic: other groups never see the retry', async () => {
    const topic = name('retry');
    const billing: Message[] = [];
    const audit: Message[] = [];
    await broker.subscribe(topic, (message) => {
      billing.push(message);
      return message.attempt === 1 ? nack({ delayMs: 600 }) : undefined;
    }, 'billing', { ensure: true });
    const plain = await plainConsumer(topic, 'audit');
    await broker.subscribe(topic, (message) => void audit.push(message), 'audit2', { ensure: true });
    try {
      const started = Date.now();
      await broker.publish(topic, { body: { n: 1 } });
      await waitFor(() => billing.length >= 2, 10_000, 'the delayed retry');
      expect(Date.now() - started).toBeGreaterThanOrEqual(550);
      expect(billing[1]!.attempt).toBe(2);
      expect(billing[1]!.id).toBe(billing[0]!.id);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(audit).toHaveLength(1);
      expect(plain.messages).toHaveLength(1);
    } finally {
      plain.close();
    }
  });
});
