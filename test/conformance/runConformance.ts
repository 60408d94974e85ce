/**
 * The conformance suite: one set of scenarios every adapter and trigger runs unchanged, modelled on
 * Watermill's universal Pub/Sub tests. Scenarios that need a feature the target does not declare
 * are reported as not applicable (see {@link scenarioFor}).
 *
 * @packageDocumentation
 */
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { deadLetterTopicOf, type Broker, type PublishReceipt, type SubscribeOptions } from '../../runtime/Broker.js';
import { InvalidNameError, MissingGroupError, OmniQueueError } from '../../runtime/errors.js';
import type { LogFields, Logger } from '../../runtime/Logger.js';
import { deadLetter, nack, type Handler, type Message, type PublishInput } from '../../runtime/message.js';
import { NAME_RULE } from '../../runtime/validateName.js';
import { WireHeader } from '../../runtime/wire.js';
import type { ConformanceTarget } from './ConformanceTarget.js';
import { scenarioFor, uniqueName } from './scenario.js';
import { pause, yieldToEventLoop } from './waitFor.js';

/** The group every dead-letter topic is read with. */
const DLQ_GROUP = 'dlq';

/** Headers OmniQueue keeps for itself and never shows a handler. */
const TRANSPORT_HEADERS = [WireHeader.Id, WireHeader.PublishedAt, WireHeader.Attempt];

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Defines `describe(target.name)` with every conformance scenario for `target`. Call it from a
 * runner file (`test/conformance/<name>.test.ts`) that builds the target.
 */
export function runConformance(target: ConformanceTarget): void {
  describe(target.name, () => {
    const scenario = scenarioFor(target);
    const features = target.features;

    scenario('1. publish/consume round trip keeps id, body, headers, key, attempt, publishedAt and content type', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('roundtrip');
      const group = ctx.group('g');
      const received: Message[] = [];
      await broker.subscribe(topic, (message) => void received.push(message), group, { ensure: true });

      const id = uniqueName('order');
      const body = { orderId: 42, items: [{ sku: 'A-1', qty: 2 }], note: 'zürich ✓ "quoted"', nested: { ok: true, nothing: null } };
      const before = Date.now();
      const receipt = await broker.publish(topic, { id, body, key: 'customer-7', headers: { 'x-tenant': 'acme', 'x-priority': 5, 'x-flag': true } });
      expect(receipt.id).toBe(id);
      const generated = await broker.publish(topic, { body: { second: true }, key: 'customer-8' });
      const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
      const binary = await broker.publish(topic, { body: bytes });
      const after = Date.now();

      await ctx.waitFor(() => received.length >= 3, 10_000, () => `3 messages, got ${received.length}`);
      const byId = new Map(received.map((message) => [message.id, message]));

      const first = byId.get(id);
      expect(first, 'message with the producer id').toBeDefined();
      expect(first!.topic).toBe(topic);
      expect(first!.group).toBe(group);
      expect(first!.body).toEqual(body);
      expect(first!.key).toBe('customer-7');
      expect(first!.headers).toMatchObject({ 'x-tenant': 'acme', 'x-priority': '5', 'x-flag': 'true' });
      for (const name of TRANSPORT_HEADERS) expect(first!.headers, `header ${name} hidden from the handler`).not.toHaveProperty(name);
      expect(first!.attempt).toBe(1);
      expect(first!.contentType).toBe('application/json');
      expect(first!.publishedAt).toBeInstanceOf(Date);
      expect(first!.publishedAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect(first!.publishedAt.getTime()).toBeLessThanOrEqual(after + 1_000);

      const second = byId.get(generated.id);
      expect(second, 'message with the generated id').toBeDefined();
      expect(generated.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(second!.body).toEqual({ second: true });
      expect(second!.key).toBe('customer-8');

      const third = byId.get(binary.id);
      expect(third, 'binary message').toBeDefined();
      expect(third!.contentType).toBe('application/octet-stream');
      expect(third!.body).toBeInstanceOf(Uint8Array);
      expect([...(third!.body as Uint8Array)]).toEqual([...bytes]);
      expect(third!.key).toBeUndefined();
    });

    scenario('2. topics stay separate', [], async (ctx) => {
      const broker = await ctx.connect();
      const topicA = ctx.topic('sepA');
      const topicB = ctx.topic('sepB');
      const group = ctx.group('g');
      const gotA: unknown[] = [];
      const gotB: unknown[] = [];
      await broker.subscribe(topicA, (message) => void gotA.push(message.body), group, { ensure: true });
      await broker.subscribe(topicB, (message) => void gotB.push(message.body), group, { ensure: true });
      await broker.publish(topicA, { body: 'a1' });
      await broker.publish(topicB, { body: 'b1' });
      await broker.publish(topicA, { body: 'a2' });
      await ctx.waitFor(() => gotA.length >= 2 && gotB.length >= 1, 10_000, () => `a: ${gotA.length}/2, b: ${gotB.length}/1`);
      expect([...gotA].sort()).toEqual(['a1', 'a2']);
      expect(gotB).toEqual(['b1']);
    });

    scenario('3. fanout: every group gets every message', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('fanout');
      const groups = [ctx.group('billing'), ctx.group('shipping')];
      const seen = groups.map(() => new Set<string>());
      for (const [index, group] of groups.entries()) {
        await broker.subscribe(topic, (message) => void seen[index]!.add(message.id), group, { ensure: true });
      }
      const ids = await publishMany(broker, topic, 20, (i) => ({ body: { i } }));
      await ctx.waitFor(() => seen.every((set) => set.size >= ids.length), 10_000, () => `20 per group, got ${seen.map((set) => set.size).join(' and ')}`);
      for (const set of seen) expect([...set].sort()).toEqual([...ids].sort());
    });

    scenario(
      '4. competing consumers: 5 consumers of one group handle 5,000 messages exactly once between them',
      [],
      async (ctx) => {
        const total = 5_000;
        const consumerCount = 5;
        const topic = ctx.topic('compete');
        const group = ctx.group('workers');
        const deliveries = new Map<string, number>();
        const perConsumer = new Array<number>(consumerCount).fill(0);
        const brokers: Broker[] = [];
        for (let c = 0; c < consumerCount; c++) brokers.push(await ctx.connect());
        for (const [c, broker] of brokers.entries()) {
          await broker.subscribe(
            topic,
            (message) => {
              deliveries.set(message.id, (deliveries.get(message.id) ?? 0) + 1);
              perConsumer[c]!++;
            },
            group,
            { ensure: true },
          );
        }
        const ids = await publishMany(brokers[0]!, topic, total, (i) => ({ body: { i } }));
        await ctx.waitFor(() => deliveries.size >= total, 30_000, () => `${total} distinct messages, got ${deliveries.size}`);
        // Close every consumer gracefully: a duplicate caused by a lost ack would show up by now.
        await Promise.all(brokers.map((broker) => broker.close()));

        const duplicates = [...deliveries.values()].reduce((sum, count) => sum + count - 1, 0);
        const lost = ids.filter((id) => !deliveries.has(id));
        expect(lost, 'lost messages').toEqual([]);
        expect(duplicates, 'duplicate deliveries without any failure').toBe(0);
        expect(perConsumer.reduce((sum, count) => sum + count, 0)).toBe(total);
        if (features.consumerGroups) {
          expect(perConsumer.filter((count) => count > 0).length, `work shared between consumers: ${perConsumer.join(', ')}`).toBeGreaterThan(1);
        }
      },
      { timeoutMs: 60_000 },
    );

    scenario('5. nack → redelivered with attempt + 1', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('nack');
      const seen: { id: string; attempt: number; body: unknown }[] = [];
      await broker.subscribe(
        topic,
        (message) => {
          seen.push({ id: message.id, attempt: message.attempt, body: message.body });
          return message.attempt === 1 ? nack() : undefined;
        },
        ctx.group('g'),
        { ensure: true },
      );
      const { id } = await broker.publish(topic, { body: { n: 1 } });
      await ctx.waitFor(() => seen.length >= 2, 10_000, () => `a redelivery, got ${seen.length} deliveries`);
      expect(seen).toEqual([
        { id, attempt: 1, body: { n: 1 } },
        { id, attempt: 2, body: { n: 1 } },
      ]);
    });

    scenario('6. nack with a delay is not redelivered before the delay', ['delay'], async (ctx) => {
      const delayMs = 300;
      const broker = await ctx.connect();
      const topic = ctx.topic('nackdelay');
      const times: number[] = [];
      await broker.subscribe(
        topic,
        (message) => {
          times.push(performance.now());
          return message.attempt === 1 ? nack({ delayMs }) : undefined;
        },
        ctx.group('g'),
        { ensure: true },
      );
      await broker.publish(topic, { body: 'later' });
      await ctx.waitFor(() => times.length >= 2, 10_000 + delayMs, () => `the delayed redelivery, got ${times.length} deliveries`);
      // Timers may fire a few milliseconds early relative to another clock; allow 20 ms.
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(delayMs - 20);
    });

    scenario('7. a thrown error → retried', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('throw');
      const attempts: number[] = [];
      let handled = false;
      await broker.subscribe(
        topic,
        (message) => {
          attempts.push(message.attempt);
          if (message.attempt < 3) throw new Error(`transient failure ${message.attempt}`);
          handled = true;
        },
        ctx.group('g'),
        { ensure: true },
      );
      await broker.publish(topic, { body: { flaky: true } });
      await ctx.waitFor(() => handled, 10_000, () => `success on attempt 3, attempts so far ${attempts.join(',')}`);
      expect(attempts).toEqual([1, 2, 3]);
    });

    scenario('8. maxAttempts exhausted → dead-lettered with the dlq headers, original body and headers', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('maxatt');
      const group = ctx.group('g');
      const attempts: number[] = [];
      await broker.subscribe(
        topic,
        (message) => {
          attempts.push(message.attempt);
          throw new Error('boom: cannot handle');
        },
        group,
        { ensure: true, retry: { maxAttempts: 3 } },
      );
      const dead = await readDeadLetters(broker, topic, group);
      const before = Date.now();
      const { id } = await broker.publish(topic, { body: { orderId: 7 }, headers: { 'x-tenant': 'acme' }, key: 'k-7' });
      await ctx.waitFor(() => dead.length >= 1, 10_000, () => `a dead letter, attempts so far ${attempts.join(',')}`);
      expect(attempts).toEqual([1, 2, 3]);
      const letter = dead[0]!;
      expect(letter.id).toBe(id);
      expect(letter.body).toEqual({ orderId: 7 });
      expect(letter.headers).toMatchObject({
        'x-tenant': 'acme',
        [WireHeader.DlqReason]: 'max-attempts-exceeded',
        [WireHeader.DlqAttempts]: '3',
        [WireHeader.DlqTopic]: topic,
        [WireHeader.DlqGroup]: group,
      });
      expect(letter.headers[WireHeader.DlqError]).toContain('boom: cannot handle');
      const failedAt = Date.parse(letter.headers[WireHeader.DlqFailedAt] ?? '');
      expect(failedAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(failedAt).toBeLessThanOrEqual(Date.now() + 1_000);
      expect(dead).toHaveLength(1);
    });

    scenario('9. deadLetter verdict → straight to the dead-letter topic', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('dlverdict');
      const group = ctx.group('g');
      let calls = 0;
      await broker.subscribe(
        topic,
        () => {
          calls++;
          return deadLetter('customer-unknown');
        },
        group,
        { ensure: true },
      );
      const dead = await readDeadLetters(broker, topic, group);
      const { id } = await broker.publish(topic, { body: { customer: 'nobody' }, headers: { 'x-origin': 'web' } });
      await ctx.waitFor(() => dead.length >= 1, 10_000, 'the dead letter');
      expect(calls).toBe(1);
      expect(dead[0]!.id).toBe(id);
      expect(dead[0]!.body).toEqual({ customer: 'nobody' });
      expect(dead[0]!.headers).toMatchObject({
        'x-origin': 'web',
        [WireHeader.DlqReason]: 'customer-unknown',
        [WireHeader.DlqAttempts]: '1',
        [WireHeader.DlqTopic]: topic,
        [WireHeader.DlqGroup]: group,
      });
    });

    scenario('10. a body failing the schema → dead-lettered without retry, handler never called', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('schema');
      const group = ctx.group('g');
      const handled: unknown[] = [];
      const schema = z.object({ orderId: z.number().int(), note: z.string().default('none') });
      await broker.subscribe(topic, (message) => void handled.push(message.body), group, { ensure: true, schema });
      const dead = await readDeadLetters(broker, topic, group);
      const { id } = await broker.publish(topic, { body: { orderId: 'not-a-number' } });
      await broker.publish(topic, { body: { orderId: 5 } });
      await ctx.waitFor(() => dead.length >= 1 && handled.length >= 1, 10_000, () => `a dead letter (${dead.length}) and a handled message (${handled.length})`);
      expect(handled).toEqual([{ orderId: 5, note: 'none' }]);
      expect(dead[0]!.id).toBe(id);
      expect(dead[0]!.body).toEqual({ orderId: 'not-a-number' });
      expect(dead[0]!.headers).toMatchObject({ [WireHeader.DlqReason]: 'schema-validation-failed', [WireHeader.DlqAttempts]: '1' });
      expect(dead[0]!.headers[WireHeader.DlqError]).toContain('orderId');
    });

    scenario(
      '11. ordering per key: 1,000 messages over 16 keys arrive in publish order per key (with retries in place)',
      ['orderingPerKey'],
      async (ctx) => {
        const total = 1_000;
        const keyCount = 16;
        const broker = await ctx.connect();
        const topic = ctx.topic('ordered');
        const handledPerKey = new Map<string, number[]>();
        let handled = 0;
        await broker.subscribe<{ key: string; seq: number }>(
          topic,
          async (message) => {
            const { key, seq } = message.body;
            if (seq % 7 === 0) await pause(1);
            // A few first attempts fail: the retry must not let a later same-key message overtake.
            if (seq % 50 === 3 && message.attempt === 1) throw new Error('first attempt fails');
            const list = handledPerKey.get(key) ?? [];
            list.push(seq);
            handledPerKey.set(key, list);
            handled++;
          },
          ctx.group('g'),
          { ensure: true, ordering: 'key', concurrency: 16 },
        );
        const perKey = Math.ceil(total / keyCount);
        await Promise.all(
          Array.from({ length: keyCount }, async (_, k) => {
            const key = `key-${k}`;
            for (let seq = 0; seq < perKey && k + seq * keyCount < total; seq++) await broker.publish(topic, { key, body: { key, seq } });
          }),
        );
        await ctx.waitFor(() => handled >= total, 30_000, () => `${total} handled, got ${handled}`);
        expect(handledPerKey.size).toBe(keyCount);
        for (const [key, seqs] of handledPerKey) expect(seqs, `order of ${key}`).toEqual(seqs.map((_, index) => index));
      },
      { timeoutMs: 60_000 },
    );

    scenario('12. a subscriber closed and reopened 5 times while publishing continues loses nothing', ['retainsWhileOffline'], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('reopen');
      const group = ctx.group('g');
      const received = new Map<string, number>();
      const handler: Handler = (message) => void received.set(message.id, (received.get(message.id) ?? 0) + 1);
      let subscription = await broker.subscribe(topic, handler, group, { ensure: true });

      const published: string[] = [];
      let stop = false;
      const publisher = (async () => {
        for (let i = 0; !stop; i++) {
          published.push((await broker.publish(topic, { body: { i } })).id);
          if (i % 5 === 4) await pause(1);
        }
      })();
      try {
        for (let round = 0; round < 5; round++) {
          const before = received.size;
          await ctx.waitFor(() => received.size >= before + 5, 10_000, `messages while subscribed (round ${round})`);
          await subscription.close();
          const mark = published.length;
          await ctx.waitFor(() => published.length >= mark + 10, 10_000, `messages published while closed (round ${round})`);
          subscription = await broker.subscribe(topic, handler, group, { ensure: true });
        }
      } finally {
        stop = true;
        await publisher;
      }
      await ctx.waitFor(
        () => published.every((id) => received.has(id)),
        15_000,
        () => `all ${published.length} published messages, missing ${published.filter((id) => !received.has(id)).length}`,
      );
      if (features.exactlyOnce) expect([...received.values()].filter((count) => count > 1)).toEqual([]);
      await subscription.close();
    });

    scenario('13. closing a broker while publishing loses nothing whose publish resolved', ['retainsWhileOffline'], async (ctx) => {
      const topic = ctx.topic('pubclose');
      const group = ctx.group('g');
      const creator = await ctx.connect();
      await (await creator.subscribe(topic, () => {}, group, { ensure: true })).close();

      const producer = await ctx.connect();
      const resolved: string[] = [];
      const rejected: unknown[] = [];
      const pending: Promise<void>[] = [];
      let closing: Promise<void> | undefined;
      for (let i = 0, afterClose = 0; afterClose < 50; i++) {
        pending.push(
          producer.publish(topic, { body: { i } }).then(
            (receipt) => void resolved.push(receipt.id),
            (error: unknown) => void rejected.push(error),
          ),
        );
        if (closing) afterClose++;
        else if (resolved.length >= 200 || i >= 5_000) closing = producer.close();
        if (i % 25 === 24) await yieldToEventLoop();
      }
      await Promise.all(pending);
      await closing;
      expect(resolved.length).toBeGreaterThan(0);
      expect(rejected.length, 'publishes made after close reject').toBeGreaterThanOrEqual(50);
      for (const error of rejected) expect(error).toBeInstanceOf(OmniQueueError);

      const reader = await ctx.connect();
      const received = new Set<string>();
      await reader.subscribe(topic, (message) => void received.add(message.id), group, { ensure: true });
      await ctx.waitFor(
        () => resolved.every((id) => received.has(id)),
        20_000,
        () => `all ${resolved.length} resolved publishes, missing ${resolved.filter((id) => !received.has(id)).length}`,
      );
    });

    scenario('14. a group created before publishing receives the messages published while it had no consumer', ['retainsWhileOffline'], async (ctx) => {
      const topic = ctx.topic('oldmsgs');
      const group = ctx.group('g');
      const creator = await ctx.connect();
      await (await creator.subscribe(topic, () => {}, group, { ensure: true })).close();
      const ids = await publishMany(creator, topic, 10, (i) => ({ body: { i } }));

      const reader = await ctx.connect();
      const received = new Set<string>();
      await reader.subscribe(topic, (message) => void received.add(message.id), group, { ensure: true });
      await ctx.waitFor(() => received.size >= ids.length, 10_000, () => `${ids.length} old messages, got ${received.size}`);
      expect([...received].sort()).toEqual([...ids].sort());
    });

    scenario('15. the concurrency limit is reached and never exceeded', [], async (ctx) => {
      const concurrency = 4;
      const broker = await ctx.connect();
      const topic = ctx.topic('concurrency');
      let active = 0;
      let peak = 0;
      let done = 0;
      const subscription = await broker.subscribe(
        topic,
        async () => {
          active++;
          peak = Math.max(peak, active);
          await pause(20);
          active--;
          done++;
        },
        ctx.group('g'),
        { ensure: true, concurrency },
      );
      await publishMany(broker, topic, 40, (i) => ({ body: { i } }));
      await ctx.waitFor(() => done >= 40, 15_000, () => `40 handled, got ${done}`);
      expect(peak).toBeLessThanOrEqual(concurrency);
      expect(peak).toBe(concurrency);
      expect(subscription.peakInFlight).toBeLessThanOrEqual(concurrency);
    });

    scenario("16. a poison body from a foreign producer is dead-lettered as 'decode-failed' and the subscription keeps running", [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('poison');
      const group = ctx.group('g');
      const handled: unknown[] = [];
      await broker.subscribe(topic, (message) => void handled.push(message.body), group, { ensure: true });
      // The dead letter keeps the undecodable bytes, so it is read raw.
      const dead = await readDeadLetters(broker, topic, group, { invalidJson: 'deliver-raw' });
      await ctx.target.publishForeign(topic, textEncoder.encode('not json{'), {});
      await ctx.waitFor(() => dead.length >= 1, 10_000, 'the poison message in the dead-letter topic');
      expect(dead[0]!.headers[WireHeader.DlqReason]).toBe('decode-failed');
      expect(dead[0]!.headers[WireHeader.DlqAttempts]).toBe('1');
      expect(asText(dead[0]!.body)).toBe('not json{');

      await broker.publish(topic, { body: { after: 'poison' } });
      await ctx.waitFor(() => handled.length >= 1, 10_000, 'the valid message after the poison one');
      expect(handled).toEqual([{ after: 'poison' }]);
    });

    scenario('17. foreign producer interop: JSON bytes and native headers reach the handler', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('foreign');
      const received: Message[] = [];
      await broker.subscribe(topic, (message) => void received.push(message), ctx.group('g'), { ensure: true });
      await ctx.target.publishForeign(topic, textEncoder.encode(JSON.stringify({ hello: 'world', n: [1, 2] })), { 'x-source': 'legacy-app' });
      await ctx.waitFor(() => received.length >= 1, 10_000, 'the foreign message');
      const message = received[0]!;
      expect(message.body).toEqual({ hello: 'world', n: [1, 2] });
      expect(message.headers['x-source']).toBe('legacy-app');
      expect(typeof message.id).toBe('string');
      expect(message.id.length).toBeGreaterThan(0);
      expect(message.attempt).toBe(1);
      expect(Number.isNaN(message.publishedAt.getTime())).toBe(false);
    });

    scenario('18. book-style msg.ack()/msg.nack() work, and a second settlement is a no-op with a warning', [], async (ctx) => {
      const warnings: string[] = [];
      const broker = await ctx.connect({ logger: capturingLogger(warnings) });
      const topic = ctx.topic('bookstyle');
      const deliveries = new Map<string, number[]>();
      let settleErrors = 0;
      await broker.subscribe<{ mode: string }>(
        topic,
        async (message) => {
          deliveries.set(message.body.mode, [...(deliveries.get(message.body.mode) ?? []), message.attempt]);
          try {
            if (message.body.mode === 'ack-then-nack') {
              await message.ack();
              await message.nack();
            } else if (message.attempt === 1) {
              await message.nack();
              await message.ack();
            } else {
              await message.ack();
            }
          } catch {
            settleErrors++;
          }
        },
        ctx.group('g'),
        { ensure: true },
      );
      await broker.publish(topic, { body: { mode: 'ack-then-nack' } });
      await broker.publish(topic, { body: { mode: 'nack-then-ack' } });
      await ctx.waitFor(() => deliveries.get('nack-then-ack')?.length === 2, 10_000, 'the nacked message redelivered');
      // Retry delays are ≤ 50 ms: a wrongly honoured second settlement would show within this window.
      await ctx.holdsFor(
        () => deliveries.get('ack-then-nack')?.length === 1 && deliveries.get('nack-then-ack')?.length === 2,
        300,
        () => `exactly one settlement each (${JSON.stringify(Object.fromEntries(deliveries))})`,
      );
      expect(deliveries.get('ack-then-nack')).toEqual([1]);
      expect(deliveries.get('nack-then-ack')).toEqual([1, 2]);
      expect(settleErrors).toBe(0);
      expect(warnings.filter((text) => text.includes('settled twice')).length).toBeGreaterThanOrEqual(2);
    });

    scenario('19. a missing group id and invalid names are refused at the call with typed errors', [], async (ctx) => {
      const broker = await ctx.connect();
      const topic = ctx.topic('names');
      const handler: Handler = () => {};
      await expect(broker.subscribe(topic, handler, '')).rejects.toBeInstanceOf(MissingGroupError);
      await expect(broker.subscribe(topic, handler, undefined as unknown as string)).rejects.toBeInstanceOf(MissingGroupError);

      const badTopic = broker.publish('orders/eu west!', { body: 1 });
      await expect(badTopic).rejects.toBeInstanceOf(InvalidNameError);
      await expect(badTopic).rejects.toThrow(NAME_RULE);
      await expect(broker.subscribe('bad topic', handler, 'g')).rejects.toBeInstanceOf(InvalidNameError);
      await expect(broker.subscribe(topic, handler, 'bad:group')).rejects.toBeInstanceOf(InvalidNameError);
      await expect(broker.publish('x'.repeat(201), { body: 1 })).rejects.toBeInstanceOf(InvalidNameError);
      try {
        await broker.publish('über', { body: 1 });
        expect.unreachable('publish to an invalid topic must reject');
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidNameError);
        const text = (error as Error).message;
        for (const part of ['A–Z', 'a–z', '0–9', '(.)', '(_)', '(-)']) expect(text).toContain(part);
      }
    });

    scenario('20. a message nacked with a long delay does not block the group: a later message is handled right away', [], async (ctx) => {
      const delayMs = 2_000 * ctx.timeScale;
      const broker = await ctx.connect();
      const topic = ctx.topic('noblock');
      const events: { body: string; attempt: number; at: number }[] = [];
      await broker.subscribe<string>(
        topic,
        (message) => {
          events.push({ body: message.body, attempt: message.attempt, at: performance.now() });
          return message.body === 'A' && message.attempt === 1 ? nack({ delayMs }) : undefined;
        },
        ctx.group('g'),
        // One at a time: if the retry blocked the consumer, B could not run.
        { ensure: true, concurrency: 1 },
      );
      await broker.publish(topic, { body: 'A' });
      await ctx.waitFor(() => events.length >= 1, 10_000, 'the first delivery of A');
      await broker.publish(topic, { body: 'B' });
      await ctx.waitFor(() => events.some((event) => event.body === 'B'), 10_000, 'B');
      const firstA = events[0]!;
      const b = events.find((event) => event.body === 'B')!;
      expect(firstA).toMatchObject({ body: 'A', attempt: 1 });
      // Without delay support the broker may hand A back at once; only then may it come before B.
      if (features.delay !== 'none') expect(events.filter((event) => event.body === 'A'), 'A not redelivered before B').toHaveLength(1);
      expect(b.at - firstA.at).toBeLessThan(delayMs / 2);

      await ctx.waitFor(() => events.filter((event) => event.body === 'A').length >= 2, 10_000 + delayMs / ctx.timeScale, 'the delayed redelivery of A');
      const secondA = events.filter((event) => event.body === 'A')[1]!;
      expect(secondA.attempt).toBe(2);
      if (features.delay !== 'none') expect(secondA.at - firstA.at).toBeGreaterThanOrEqual(delayMs - 20);
    });

    scenario('21. deliveries left unsettled by a closed consumer are redelivered to another consumer', ['redeliversUnsettled'], async (ctx) => {
      const topic = ctx.topic('unsettled');
      const group = ctx.group('g');
      const first = await ctx.connect();
      const second = await ctx.connect();
      let release: () => void = () => {};
      const stuck = new Promise<void>((resolve) => (release = resolve));
      const firstSeen: string[] = [];
      const secondSeen: Message[] = [];
      const subscription = await first.subscribe(
        topic,
        async (message) => {
          firstSeen.push(message.id);
          await stuck;
        },
        group,
        { ensure: true, concurrency: 1 },
      );
      try {
        const { id } = await first.publish(topic, { body: 'stuck' });
        await ctx.waitFor(() => firstSeen.length >= 1, 10_000, 'the first delivery');
        await second.subscribe(topic, (message) => void secondSeen.push(message), group, { ensure: true });
        await subscription.close({ drainTimeoutMs: 50 });
        await ctx.waitFor(() => secondSeen.some((message) => message.id === id), 15_000, 'the redelivery to the second consumer');
        const redelivered = secondSeen.find((message) => message.id === id)!;
        expect(redelivered.body).toBe('stuck');
        if (features.attempts === 'broker') expect(redelivered.attempt).toBe(2);
      } finally {
        release();
      }
    });
  });
}

/** Publishes `count` messages, at most 200 at once, and returns their ids in publish order. */
async function publishMany(broker: Broker, topic: string, count: number, make: (index: number) => PublishInput): Promise<string[]> {
  const ids: string[] = [];
  const window = 200;
  for (let start = 0; start < count; start += window) {
    const batch: Promise<PublishReceipt>[] = [];
    for (let i = start; i < Math.min(count, start + window); i++) batch.push(broker.publish(topic, make(i)));
    for (const receipt of await Promise.all(batch)) ids.push(receipt.id);
  }
  return ids;
}

/** Subscribes the `dlq` group to the default dead-letter topic of `topic`/`group` and collects what arrives. */
async function readDeadLetters(broker: Broker, topic: string, group: string, options: SubscribeOptions = {}): Promise<Message[]> {
  const dead: Message[] = [];
  await broker.subscribe(deadLetterTopicOf(topic, group), (message) => void dead.push(message), DLQ_GROUP, { ensure: true, ...options });
  return dead;
}

/** A body read raw: bytes, or text where the broker only carries text. */
function asText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return textDecoder.decode(body);
  throw new Error(`expected raw bytes, got ${typeof body}`);
}

/** A logger that keeps warning messages (for the scenarios that assert on warnings). */
function capturingLogger(warnings: string[]): Logger {
  const keep = (_fields: LogFields, message?: string): void => void warnings.push(message ?? '');
  return { debug() {}, info() {}, warn: keep, error() {} };
}
