/**
 * The Azure Functions Service Bus trigger, driven the way the host drives it: real
 * InvocationContext objects with the trigger metadata the host sends (cardinality one and many),
 * host-settled and with SDK-type bindings. The scenarios a trigger can run: round trip, nack →
 * retry with deliveryCount rising, deadLetter, schema failure, partial batch failure.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { silentLogger } from '../../runtime/Logger.js';
import { deadLetter, nack, type Message } from '../../runtime/message.js';
import { DeadLetterNeedsSdkBindingError, MessageAbandonedError, serviceBusTrigger, type ServiceBusFunctionsApp, type ServiceBusTriggerOptions } from '../../triggers/azure/index.js';
import { FunctionsHostDouble, foreignMessage, publishedByOmniQueue, singleMessageContext } from './invocationContext.js';

const BASE = { connection: 'ServiceBusConnection', topic: 'orders', group: 'billing', logger: silentLogger, tracing: false, app: false } as const;

function trigger<T = unknown>(handler: (message: Message<T>) => ReturnType<Parameters<typeof serviceBusTrigger<T>>[0]>, options: Partial<ServiceBusTriggerOptions<T>> = {}) {
  return serviceBusTrigger<T>(handler, { ...BASE, ...options } as ServiceBusTriggerOptions<T>);
}

describe('serviceBusTrigger — registration', () => {
  it('registers app.serviceBusTopic with the binding options and returns the handler', () => {
    const calls: { kind: string; name: string; options: Record<string, unknown> }[] = [];
    const app: ServiceBusFunctionsApp = {
      serviceBusTopic: (name, options) => void calls.push({ kind: 'topic', name, options }),
      serviceBusQueue: (name, options) => void calls.push({ kind: 'queue', name, options }),
    };
    const handler = serviceBusTrigger(() => undefined, { ...BASE, app, cardinality: 'many' });
    serviceBusTrigger(() => undefined, { ...BASE, app, sdkBinding: true, name: 'billing-sdk' });
    serviceBusTrigger(() => undefined, { connection: 'Sb', queue: 'jobs', app, isSessionsEnabled: true });
    expect(calls).toEqual([
      { kind: 'topic', name: 'orders-billing', options: { connection: 'ServiceBusConnection', cardinality: 'many', topicName: 'orders', subscriptionName: 'billing', handler } },
      {
        kind: 'topic',
        name: 'billing-sdk',
        options: { connection: 'ServiceBusConnection', cardinality: 'one', sdkBinding: true, autoCompleteMessages: false, topicName: 'orders', subscriptionName: 'billing', handler: expect.any(Function) },
      },
      { kind: 'queue', name: 'jobs', options: { connection: 'Sb', cardinality: 'one', isSessionsEnabled: true, queueName: 'jobs', handler: expect.any(Function) } },
    ]);
  });

  it('with the real @azure/functions app (test mode outside a host) registration is skipped and the handler still runs', async () => {
    const seen: unknown[] = [];
    const handler = serviceBusTrigger((message) => void seen.push(message.body), { ...BASE, app: undefined });
    const message = publishedByOmniQueue({ n: 1 });
    await handler({ n: 1 }, singleMessageContext(message));
    expect(seen).toEqual([{ n: 1 }]);
  });

  it('refuses missing connection, names or handler with typed errors', () => {
    expect(() => serviceBusTrigger(() => undefined, { ...BASE, connection: '' })).toThrow(/connection/);
    expect(() => serviceBusTrigger(() => undefined, { connection: 'x', topic: 'orders', app: false } as ServiceBusTriggerOptions)).toThrow(/topic and group/);
    expect(() => serviceBusTrigger(undefined as never, BASE)).toThrow(/handler must be a function/);
  });

  it('never loads @azure/service-bus', () => {
    const script = `await import('./triggers/azure/index.ts'); const { createRequire } = await import('node:module'); const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes('@azure/service-bus') || p.includes('functions-extensions-servicebus')); console.log(JSON.stringify(loaded));`;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(JSON.parse(output.trim().split('\n').pop()!)).toEqual([]);
  });
});

for (const sdkBinding of [false, true]) {
  for (const cardinality of ['one', 'many'] as const) {
    describe(`serviceBusTrigger — ${sdkBinding ? 'SDK binding' : 'host-settled'}, cardinality ${cardinality}`, () => {
      it('round trip keeps id, body, headers (in the producer\'s case), key, attempt, publishedAt and content type', async () => {
        const host = new FunctionsHostDouble({ cardinality, sdkBinding });
        const received: Message[] = [];
        const handler = trigger((message) => void received.push(message), { cardinality, sdkBinding });
        const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
        host.send(
          publishedByOmniQueue({ orderId: 42, note: 'zürich ✓' }, { id: 'order-42', key: 'customer-7', headers: { TenantId: 'acme', 'x-priority': '5' } }),
          publishedByOmniQueue(bytes, { id: 'binary-1' }),
          publishedByOmniQueue('just a string', { id: 'string-1' }),
        );
        await host.drain(handler);
        expect(host.invocations.every((invocation) => invocation.error === undefined)).toBe(true);
        expect(host.completed).toHaveLength(3);
        if (sdkBinding) expect(host.actions.map((call) => call.action)).toEqual(['complete', 'complete', 'complete']);
        const order = received.find((message) => message.id === 'order-42')!;
        expect(order).toMatchObject({ topic: 'orders', group: 'billing', body: { orderId: 42, note: 'zürich ✓' }, key: 'customer-7', attempt: 1, contentType: 'application/json' });
        expect(order.headers).toMatchObject({ TenantId: 'acme', 'x-priority': '5' });
        expect(order.headers).not.toHaveProperty('tenantId');
        expect(order.headers).not.toHaveProperty('omniqueue-header-case');
        expect(Math.abs(order.publishedAt.getTime() - Date.now())).toBeLessThan(5_000);
        const binary = received.find((message) => message.id === 'binary-1')!;
        expect(binary.contentType).toBe('application/octet-stream');
        expect([...(binary.body as Uint8Array)]).toEqual([...bytes]);
        expect(received.find((message) => message.id === 'string-1')!.body).toBe('just a string');
      });

      it('nack → the message comes back with deliveryCount rising, attempt = deliveryCount', async () => {
        const host = new FunctionsHostDouble({ cardinality, sdkBinding });
        const attempts: number[] = [];
        const handler = trigger(
          (message) => {
            attempts.push(message.attempt);
            if (message.attempt === 1) return nack();
            if (message.attempt === 2) throw new Error('transient');
            return undefined;
          },
          { cardinality, sdkBinding },
        );
        host.send(publishedByOmniQueue({ n: 1 }));
        await host.drain(handler);
        expect(attempts).toEqual([1, 2, 3]);
        expect(host.completed.map((message) => message.deliveryCount)).toEqual([3]);
        if (sdkBinding) {
          expect(host.actions.map((call) => call.action)).toEqual(['abandon', 'abandon', 'complete']);
          expect(host.invocations.every((invocation) => invocation.error === undefined)).toBe(true);
        } else {
          expect(host.invocations.map((invocation) => invocation.error?.constructor)).toEqual([MessageAbandonedError, MessageAbandonedError, undefined]);
        }
      });

      it('deadLetter verdict: dead-lettered at once with SDK bindings; a typed error (and the host\'s MaxDeliveryCount) without', async () => {
        const host = new FunctionsHostDouble({ cardinality, sdkBinding, maxDeliveryCount: 3 });
        let calls = 0;
        const handler = trigger(() => (calls++, deadLetter('customer-unknown')), { cardinality, sdkBinding });
        host.send(publishedByOmniQueue({ customer: 'nobody' }, { id: 'dl-1' }));
        await host.drain(handler);
        expect(host.deadLetters).toHaveLength(1);
        if (sdkBinding) {
          expect(calls).toBe(1);
          expect(host.actions).toEqual([{ action: 'deadletter', messageId: 'dl-1', reason: 'customer-unknown', description: 'customer-unknown' }]);
          expect(host.deadLetters[0]!.deadLetterReason).toBe('customer-unknown');
        } else {
          expect(calls).toBe(3);
          const error = host.invocations[0]!.error as DeadLetterNeedsSdkBindingError;
          expect(error).toBeInstanceOf(DeadLetterNeedsSdkBindingError);
          expect(error.code).toBe('UNSUPPORTED_FEATURE');
          expect(error.reasons).toEqual({ 'dl-1': 'customer-unknown' });
          expect(error.message).toContain('sdkBinding: true');
          expect(host.deadLetters[0]!.deadLetterReason).toBe('MaxDeliveryCountExceeded');
        }
      });

      it('a body failing the schema (zod) is dead-lettered without calling the handler', async () => {
        const host = new FunctionsHostDouble({ cardinality, sdkBinding, maxDeliveryCount: 2 });
        const handled: unknown[] = [];
        const schema = z.object({ orderId: z.number().int() });
        const handler = trigger((message) => void handled.push(message.body), { cardinality, sdkBinding, schema });
        host.send(publishedByOmniQueue({ orderId: 'not-a-number' }, { id: 'bad' }), publishedByOmniQueue({ orderId: 5 }, { id: 'good' }));
        await host.drain(handler);
        if (!sdkBinding && cardinality === 'many') {
          // Host-settled batches are all-or-nothing: the good message shares the poison message's fate,
          // is handled on every delivery and is dead-lettered with it at MaxDeliveryCount. Use sdkBinding.
          expect(handled).toEqual([{ orderId: 5 }, { orderId: 5 }]);
          expect(host.deadLetters.map((message) => message.messageId)).toEqual(['bad', 'good']);
        } else {
          expect(handled).toEqual([{ orderId: 5 }]);
          expect(host.deadLetters.map((message) => message.messageId)).toEqual(['bad']);
        }
        if (sdkBinding) {
          const call = host.actions.find((action) => action.action === 'deadletter')!;
          expect(call).toMatchObject({ messageId: 'bad', reason: 'schema-validation-failed' });
          expect(call.description).toContain('orderId');
        } else {
          expect(host.invocations.some((invocation) => invocation.error instanceof DeadLetterNeedsSdkBindingError)).toBe(true);
        }
      });
    });
  }
}

describe('serviceBusTrigger — batches', () => {
  it('SDK binding: a batch partly fails — each message settled on its own, like batchItemFailures', async () => {
    const host = new FunctionsHostDouble({ cardinality: 'many', sdkBinding: true });
    const attempts: Record<string, number[]> = {};
    const handler = trigger<{ n: number }>(
      (message) => {
        (attempts[message.body.n] ??= []).push(message.attempt);
        if (message.attempt > 1) return undefined;
        if (message.body.n === 2) return nack();
        if (message.body.n === 3) return deadLetter('poison');
        if (message.body.n === 4) throw new Error('flaky');
        return undefined;
      },
      { cardinality: 'many', sdkBinding: true },
    );
    host.send(...[1, 2, 3, 4].map((n) => publishedByOmniQueue({ n }, { id: `m-${n}` })));
    const first = await host.invoke(handler);
    expect(first.error).toBeUndefined();
    expect(host.actions.map((call) => `${call.action}:${call.messageId}`).sort()).toEqual(['abandon:m-2', 'abandon:m-4', 'complete:m-1', 'deadletter:m-3']);
    await host.drain(handler);
    expect(attempts).toEqual({ 1: [1], 2: [1, 2], 3: [1], 4: [1, 2] });
    expect(host.completed.map((message) => message.messageId).sort()).toEqual(['m-1', 'm-2', 'm-4']);
    expect(host.deadLetters.map((message) => message.messageId)).toEqual(['m-3']);
  });

  it('host-settled: one failure fails (abandons) the whole batch — documented; use sdkBinding for partial failures', async () => {
    const host = new FunctionsHostDouble({ cardinality: 'many' });
    const seen: string[] = [];
    const handler = trigger<{ n: number }>((message) => (seen.push(`${message.body.n}@${message.attempt}`), message.body.n === 2 && message.attempt === 1 ? nack() : undefined), {
      cardinality: 'many',
    });
    host.send(...[1, 2, 3].map((n) => publishedByOmniQueue({ n }, { id: `m-${n}` })));
    const first = await host.invoke(handler);
    expect(first.error).toBeInstanceOf(MessageAbandonedError);
    expect((first.error as MessageAbandonedError).messageIds).toEqual(['m-2']);
    await host.drain(handler);
    expect(seen.sort()).toEqual(['1@1', '1@2', '2@1', '2@2', '3@1', '3@2']);
  });

  it('a foreign producer\'s PascalCase property arrives camel-cased without SDK bindings (host limitation) and intact with them', async () => {
    for (const sdkBinding of [false, true]) {
      const host = new FunctionsHostDouble({ sdkBinding });
      const received: Message[] = [];
      host.send(foreignMessage('{"hello":"world"}', { TenantId: 'acme', 'x-source': 'legacy' }, 'application/json'));
      await host.drain(trigger((message) => void received.push(message), { sdkBinding }));
      expect(received[0]!.body).toEqual({ hello: 'world' });
      expect(received[0]!.headers['x-source']).toBe('legacy');
      expect(received[0]!.headers[sdkBinding ? 'TenantId' : 'tenantId']).toBe('acme');
      expect(received[0]!.id).toBe(host.completed[0]!.messageId);
      expect(received[0]!.attempt).toBe(1);
    }
  });

  it('an undecodable JSON body is dead-lettered as decode-failed with SDK bindings', async () => {
    const host = new FunctionsHostDouble({ sdkBinding: true });
    host.send(foreignMessage(Buffer.from('not json{'), {}, 'application/json'));
    let calls = 0;
    await host.drain(trigger(() => void calls++, { sdkBinding: true }));
    expect(calls).toBe(0);
    expect(host.actions[0]).toMatchObject({ action: 'deadletter', reason: 'decode-failed' });
  });
});
