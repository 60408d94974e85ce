/**
 * SQS/SNS adapter specifics on the fauxqs emulator: attribute limit, size limit, FIFO ordering,
 * delayed publish, and a close that does not wait out a 20 s long poll.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../runtime/Broker.js';
import { PayloadTooLargeError, TooManyHeadersError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { sqsMissing, sqsTestOptions } from '../../test/brokers/sqs.js';
import { SqsAdapter, type SqsAdapterOptions } from './SqsAdapter.js';

const missing = await sqsMissing();

async function open(options: SqsAdapterOptions = {}): Promise<Broker> {
  const broker = new Broker(new SqsAdapter(sqsTestOptions(options)), { logger: silentLogger, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
  await broker.init();
  return broker;
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(missing !== undefined)(`SqsAdapter on fauxqs${missing ? ` — skipped: ${missing}` : ''}`, () => {
  it('9 user headers travel as native attributes; a 10th is a TooManyHeadersError; odd names travel packed, never dropped', async () => {
    const broker = await open();
    try {
      const topic = `hdr.${randomUUID().slice(0, 8)}`;
      const received: Message[] = [];
      await broker.subscribe(topic, (message) => void received.push(message), 'g', { ensure: true });
      const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`x-h${i}`, `v${i}`]));
      await broker.publish(topic, { body: 1, headers: nine });
      await expect(broker.publish(topic, { body: 2, headers: { ...nine, 'x-h9': 'v9' } })).rejects.toBeInstanceOf(TooManyHeadersError);
      await broker.publish(topic, { body: 3, headers: { 'has space': 'yes', 'x-empty': '' } });
      await until(() => received.length === 2, 10_000);
      expect(received.find((message) => message.body === 1)!.headers).toMatchObject(nine);
      expect(received.find((message) => message.body === 3)!.headers).toMatchObject({ 'has space': 'yes', 'x-empty': '' });
    } finally {
      await broker.close();
    }
  });

  it('a message over 256 KiB is a PayloadTooLargeError naming the limit', async () => {
    const broker = await open();
    try {
      const topic = `big.${randomUUID().slice(0, 8)}`;
      await broker.publish(topic, { body: 'ok' }, { ensure: true });
      const error = await broker.publish(topic, { body: 'x'.repeat(262_144) }).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect((error as PayloadTooLargeError).limit).toBe(262_144);
      expect((error as Error).message).toContain('262144');
    } finally {
      await broker.close();
    }
  });

  it('FIFO topic and queue: same-key messages arrive in publish order; key = MessageGroupId', async () => {
    const broker = await open();
    try {
      const topic = `fifo.${randomUUID().slice(0, 8)}`;
      const seen = new Map<string, number[]>();
      await broker.subscribe<{ n: number }>(topic, (message) => void seen.set(message.key!, [...(seen.get(message.key!) ?? []), message.body.n]), 'g', {
        ensure: true,
        ordering: 'key',
        createOptions: { fifo: true },
      });
      await Promise.all(Array.from({ length: 60 }, (_, n) => broker.publish(topic, { body: { n }, key: `k${n % 3}` })));
      await until(() => [...seen.values()].reduce((sum, list) => sum + list.length, 0) === 60, 15_000);
      for (const [key, list] of seen) expect(list, key).toEqual([...list].sort((a, b) => a - b));
    } finally {
      await broker.close();
    }
  });

  it('a delayed publish is not delivered before its delay (DelaySeconds on each subscribed queue)', async () => {
    const broker = await open();
    try {
      const topic = `delay.${randomUUID().slice(0, 8)}`;
      const at: number[] = [];
      await broker.subscribe(topic, () => void at.push(Date.now()), 'g', { ensure: true });
      const sent = Date.now();
      await broker.publish(topic, { body: 'later' }, { delayMs: 1_000 });
      await until(() => at.length === 1, 10_000);
      expect(at[0]! - sent).toBeGreaterThanOrEqual(1_000);
    } finally {
      await broker.close();
    }
  });

  it('close() aborts a 20 s long poll instead of waiting it out', async () => {
    const broker = await open({ waitTimeSeconds: 20 });
    const topic = `close.${randomUUID().slice(0, 8)}`;
    await broker.subscribe(topic, () => {}, 'g', { ensure: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    await broker.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
