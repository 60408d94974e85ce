/**
 * Unit tests of the Service Bus adapter against the SDK test double (no Service Bus runs here).
 * They assert the exact SDK calls and the broker semantics the double models: peek-lock, delivery
 * count, abandon → redelivery, scheduled re-sends routed to one subscription, max-delivery
 * dead-lettering, forwarding to the dead-letter topic and lock renewal.
 */
import type { ServiceBusAdministrationClient, ServiceBusClient } from '@azure/service-bus';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ServiceBusAdministrationLike, ServiceBusClientLike, ServiceBusMessage, ServiceBusReceivedMessage } from '../../adapters/servicebus/clients.js';
import { lowerFirst, restoreHeaderCase, retryFilterExpression } from '../../adapters/servicebus/codec.js';
import { ServiceBusAdapter, SERVICEBUS_FEATURES, type ServiceBusAdapterOptions } from '../../adapters/servicebus/ServiceBusAdapter.js';
import { serviceBusName } from '../../adapters/servicebus/names.js';
import '../../adapters/servicebus/index.js';
import { Broker } from '../../runtime/Broker.js';
import type { Delivery } from '../../runtime/contract.js';
import { ConfigError, PayloadTooLargeError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/Logger.js';
import { deadLetter, nack, type Message } from '../../runtime/message.js';
import { create } from '../../runtime/registry.js';
import { WireHeader } from '../../runtime/wire.js';
import { waitFor } from '../conformance/waitFor.js';
import { evaluateFilter, ServiceBusDouble } from './ServiceBusDouble.js';

// The real SDK classes satisfy the structural client types the adapter uses.
const sdkClientFits = (client: ServiceBusClient): ServiceBusClientLike => client;
const sdkAdminFits = (admin: ServiceBusAdministrationClient): ServiceBusAdministrationLike => admin;
void sdkClientFits;
void sdkAdminFits;

const FAST_RETRY = { initialDelayMs: 0, maxDelayMs: 0, jitter: 'none' } as const;
const textEncoder = new TextEncoder();

let ns: ServiceBusDouble;
const brokers: Broker[] = [];

afterEach(async () => {
  await Promise.allSettled(brokers.splice(0).map((broker) => broker.close({ drainTimeoutMs: 200 })));
  ns?.close();
});

async function open(options: Partial<ServiceBusAdapterOptions> = {}): Promise<{ broker: Broker; adapter: ServiceBusAdapter }> {
  ns ??= new ServiceBusDouble();
  const adapter = new ServiceBusAdapter({ client: ns.client(), admin: ns.admin(), logger: silentLogger, ...options });
  const broker = new Broker(adapter, { logger: silentLogger, tracing: false });
  await broker.init();
  brokers.push(broker);
  return { broker, adapter };
}

function fresh(lockDurationMs?: number): void {
  ns = new ServiceBusDouble(lockDurationMs === undefined ? {} : { lockDurationMs });
}

describe('servicebus adapter (SDK test double) — ensure', () => {
  it('creates the topic, the dead-letter topic and the subscription with maxDeliveryCount > maxAttempts, expiry dead-lettering, forwarding and the retry rule; idempotent', async () => {
    fresh();
    const { broker } = await open();
    await broker.subscribe('orders', () => undefined, 'billing', { ensure: true, retry: { maxAttempts: 4 } });
    expect(ns.callsOf('createTopic').map((call) => call.entity)).toEqual(['orders', 'orders.billing.dlq']);
    // The dead-letter topic's `dlq` group comes first: a topic without subscriptions drops what it gets.
    const [dlqSubscription, subscription] = ns.callsOf('createSubscription');
    expect(subscription!.entity).toBe('orders/billing');
    expect(subscription!.args[0]).toEqual({
      maxDeliveryCount: 5,
      deadLetteringOnMessageExpiration: true,
      forwardDeadLetteredMessagesTo: 'orders.billing.dlq',
      defaultRuleOptions: { name: 'omniqueue', filter: { sqlExpression: retryFilterExpression('orders', 'billing') } },
    });
    // The group that reads the dead-letter topic keeps its own dead letters natively.
    expect(dlqSubscription!.entity).toBe('orders.billing.dlq/dlq');
    expect(dlqSubscription!.args[0]).not.toHaveProperty('forwardDeadLetteredMessagesTo');

    const creates = ns.calls.filter((call) => call.op.startsWith('create') && call.op !== 'createReceiver').length;
    const second = await open();
    await second.adapter.ensure({ topic: 'orders', group: 'billing', retry: { maxAttempts: 4, maxDelayMs: 1 } });
    expect(ns.calls.filter((call) => call.op.startsWith('create') && call.op !== 'createReceiver')).toHaveLength(creates);
  });

  it('passes createOptions through and remembers the key field per topic', async () => {
    fresh();
    const { adapter } = await open();
    await adapter.ensure({ topic: 'sessions', group: 'g', createOptions: { topic: { defaultMessageTimeToLive: 'PT1H' }, subscription: { lockDuration: 'PT2M' }, key: 'sessionId' } });
    expect(ns.callsOf('createTopic')[0]!.args[0]).toEqual({ defaultMessageTimeToLive: 'PT1H' });
    expect(ns.callsOf('createSubscription').find((call) => call.entity === 'sessions/g')!.args[0]).toMatchObject({ lockDuration: 'PT2M', maxDeliveryCount: 6 });
    await adapter.send(wire('sessions', { key: 'customer-1' }));
    const sent = ns.callsOf('sendMessages')[0]!.args[0] as ServiceBusMessage;
    expect(sent.sessionId).toBe('customer-1');
    expect(sent.partitionKey).toBeUndefined();
  });

  it('maps names Service Bus refuses to stable, distinct entity names', () => {
    expect(serviceBusName('orders.v1', 260)).toBe('orders.v1');
    expect(serviceBusName('_private_', 260)).toMatch(/^private-[0-9a-f]{8}$/);
    const long = serviceBusName('g'.repeat(60), 50);
    expect(long).toHaveLength(50);
    expect(long).not.toBe(serviceBusName(`${'g'.repeat(59)}h`, 50));
  });
});

describe('servicebus adapter (SDK test double) — publish', () => {
  it('sends the payload bytes as the body with messageId, contentType, application properties in the user case, and partitionKey', async () => {
    fresh();
    const { broker } = await open();
    await broker.publish('orders', { id: 'order-1', body: { n: 1 }, key: 'k-1', headers: { TenantId: 'acme', 'x-priority': 5 } }, { ensure: true });
    const [call] = ns.callsOf('sendMessages');
    expect(call!.entity).toBe('orders');
    const message = call!.args[0] as ServiceBusMessage;
    expect(Buffer.isBuffer(message.body)).toBe(true);
    expect(JSON.parse((message.body as Buffer).toString('utf8'))).toEqual({ n: 1 });
    expect(message.messageId).toBe('order-1');
    expect(message.contentType).toBe('application/json');
    expect(message.partitionKey).toBe('k-1');
    expect(message.applicationProperties).toMatchObject({ TenantId: 'acme', 'x-priority': '5', [WireHeader.Id]: 'order-1', 'omniqueue-header-case': '["TenantId"]' });
    expect(message.applicationProperties).not.toHaveProperty('content-type');
  });

  it('schedules a delayed publish natively', async () => {
    fresh();
    const { broker } = await open();
    const before = Date.now();
    await broker.publish('orders', { body: 1 }, { ensure: true, delayMs: 60_000 });
    const [call] = ns.callsOf('scheduleMessages');
    expect((call!.args[1] as Date).getTime()).toBeGreaterThanOrEqual(before + 60_000);
    expect(ns.callsOf('sendMessages')).toHaveLength(0);
  });

  it('refuses a payload over the tier limit before sending', async () => {
    fresh();
    const { broker } = await open({ maxMessageBytes: 1024 });
    await expect(broker.publish('orders', { body: new Uint8Array(2048) }, { ensure: true })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(ns.callsOf('sendMessages')).toHaveLength(0);
  });

  it('needs a connection string or clients', async () => {
    await expect(new ServiceBusAdapter().connect()).rejects.toBeInstanceOf(ConfigError);
    const error = await new ServiceBusAdapter({ client: new ServiceBusDouble().client() }).connect().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
  });
});

describe('servicebus adapter (SDK test double) — consume', () => {
  it('round trip: peek-lock receiver with lock renewal, maxConcurrentCalls = prefetch, no auto-complete; ack = completeMessage', async () => {
    fresh();
    const { broker } = await open();
    const received: Message[] = [];
    await broker.subscribe('orders', (message) => void received.push(message), 'billing', { ensure: true, concurrency: 7 });
    const [receiverCall] = ns.callsOf('createReceiver');
    expect(receiverCall!.entity).toBe('orders/billing');
    expect(receiverCall!.args[0]).toEqual({ receiveMode: 'peekLock', maxAutoLockRenewalDurationInMs: 300_000, skipParsingBodyAsJson: true, skipConvertingDate: true });
    expect(ns.callsOf('subscribe')[0]!.args[0]).toEqual({ autoCompleteMessages: false, maxConcurrentCalls: 7 });

    const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
    await broker.publish('orders', { id: 'o-1', body: { total: 9.5 }, key: 'c-7', headers: { TenantId: 'acme' } });
    await broker.publish('orders', { id: 'o-2', body: bytes });
    await waitFor(() => received.length === 2 && ns.callsOf('completeMessage').length === 2, 5_000, 'two completed messages');
    const [json, binary] = [received.find((m) => m.id === 'o-1')!, received.find((m) => m.id === 'o-2')!];
    expect(json).toMatchObject({ body: { total: 9.5 }, key: 'c-7', attempt: 1, contentType: 'application/json', headers: { TenantId: 'acme' } });
    expect(json.headers).not.toHaveProperty('omniqueue-header-case');
    expect(binary.contentType).toBe('application/octet-stream');
    expect(binary.body).toEqual(bytes);
    const completed = ns.callsOf('completeMessage').map((call) => (call.args[0] as ServiceBusReceivedMessage).messageId);
    expect(completed.sort()).toEqual(['o-1', 'o-2']);
  });

  it('nack() → abandonMessage → redelivered with deliveryCount + 1 (attempt 2)', async () => {
    fresh();
    const { broker } = await open();
    const seen: number[] = [];
    await broker.subscribe('orders', (message) => (seen.push(message.attempt), message.attempt === 1 ? nack() : undefined), 'billing', { ensure: true, retry: FAST_RETRY });
    await broker.publish('orders', { body: 'x' });
    await waitFor(() => ns.callsOf('completeMessage').length === 1, 5_000, 'the redelivery completed');
    expect(seen).toEqual([1, 2]);
    const [abandon] = ns.callsOf('abandonMessage');
    expect((abandon!.args[0] as ServiceBusReceivedMessage).deliveryCount).toBe(0);
    expect((ns.callsOf('completeMessage')[0]!.args[0] as ServiceBusReceivedMessage).deliveryCount).toBe(1);
    expect(ns.callsOf('scheduleMessages')).toHaveLength(0);
  });

  it('nack with a delay → scheduled re-send to this group only, then completeMessage; the attempt keeps counting', async () => {
    fresh();
    const { broker } = await open();
    const billing: number[] = [];
    const audit: number[] = [];
    await broker.subscribe('orders', () => void audit.push(1), 'audit', { ensure: true });
    await broker.subscribe(
      'orders',
      (message) => {
        billing.push(message.attempt);
        if (message.attempt === 2) return nack(); // abandon: deliveryCount + 1 on top of the carried attempt
        return message.attempt === 1 ? nack({ delayMs: 40 }) : undefined;
      },
      'billing',
      { ensure: true, retry: FAST_RETRY },
    );
    const { id } = await broker.publish('orders', { body: { n: 1 }, headers: { 'x-tenant': 'acme' } });
    await waitFor(() => billing.length === 3, 5_000, () => `three deliveries, got ${billing.join(',')}`);
    expect(billing).toEqual([1, 2, 3]);
    const [schedule] = ns.callsOf('scheduleMessages');
    const resend = schedule!.args[0] as ServiceBusMessage;
    expect(resend.applicationProperties).toMatchObject({
      'x-tenant': 'acme',
      [WireHeader.Id]: id,
      [WireHeader.Attempt]: '2',
      'omniqueue-retry-topic': 'orders',
      'omniqueue-retry-group': 'billing',
    });
    expect(resend.messageId).toBe(`${id}/retry-2`);
    // The original was completed after the re-send was scheduled.
    const completes = ns.callsOf('completeMessage');
    expect((completes[0]!.args[0] as ServiceBusReceivedMessage).messageId).toBe(id);
    expect(ns.calls.indexOf(schedule!)).toBeLessThan(ns.calls.indexOf(completes.find((call) => call.entity === 'orders/billing')!));
    // The audit group got the original once and never the re-send.
    await waitFor(() => audit.length >= 1, 5_000, 'audit delivery');
    expect(audit).toHaveLength(1);
  });

  it('max attempts → deadLetterMessage with reason and description, forwarded to the dead-letter topic with the dlq headers', async () => {
    fresh();
    const { broker } = await open();
    const attempts: number[] = [];
    await broker.subscribe(
      'orders',
      (message) => {
        attempts.push(message.attempt);
        throw new Error('boom');
      },
      'billing',
      { ensure: true, retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 5 } },
    );
    const dead: Message[] = [];
    await broker.subscribe('orders.billing.dlq', (message) => void dead.push(message), 'dlq', { ensure: true });
    const { id } = await broker.publish('orders', { body: { orderId: 7 }, headers: { 'x-tenant': 'acme' } });
    await waitFor(() => dead.length === 1, 5_000, () => `a dead letter; attempts ${attempts.join(',')}`);
    expect(attempts).toEqual([1, 2, 3]);
    const [call] = ns.callsOf('deadLetterMessage');
    expect(call!.entity).toBe('orders/billing');
    expect(call!.args[1]).toMatchObject({
      deadLetterReason: 'max-attempts-exceeded',
      deadLetterErrorDescription: 'Error: boom',
      [WireHeader.DlqReason]: 'max-attempts-exceeded',
      [WireHeader.DlqAttempts]: '3',
      [WireHeader.DlqTopic]: 'orders',
      [WireHeader.DlqGroup]: 'billing',
    });
    expect(dead[0]).toMatchObject({ id, body: { orderId: 7 }, attempt: 1 });
    expect(dead[0]!.headers).toMatchObject({ 'x-tenant': 'acme', DeadLetterReason: 'max-attempts-exceeded', [WireHeader.DlqReason]: 'max-attempts-exceeded' });
  });

  it('deadLetter verdict, schema failure and an undecodable body are dead-lettered natively without retry', async () => {
    fresh();
    const { broker, adapter } = await open();
    const schema = z.object({ orderId: z.number() });
    await broker.subscribe('orders', (message) => (message.body.orderId === 0 ? deadLetter('customer-unknown') : undefined), 'billing', { ensure: true, schema });
    const dead: Message[] = [];
    await broker.subscribe('orders.billing.dlq', (message) => void dead.push(message), 'dlq', { ensure: true, invalidJson: 'deliver-raw' });
    await broker.publish('orders', { body: { orderId: 0 } });
    await broker.publish('orders', { body: { orderId: 'x' } });
    await adapter.sender('orders').sendMessages({ body: Buffer.from('not json{'), contentType: 'application/json', messageId: 'poison' });
    await waitFor(() => dead.length === 3, 5_000, () => `three dead letters, got ${dead.length}`);
    const reasons = ns.callsOf('deadLetterMessage').map((call) => (call.args[1] as { deadLetterReason: string }).deadLetterReason);
    expect(reasons.sort()).toEqual(['customer-unknown', 'decode-failed', 'schema-validation-failed']);
    expect(ns.callsOf('abandonMessage')).toHaveLength(0);
    const poison = dead.find((message) => message.id === 'poison')!;
    expect(poison.contentType).toBe('application/octet-stream');
    expect(Buffer.from(poison.body as Uint8Array).toString()).toBe('not json{');
    expect(poison.headers[WireHeader.DlqOriginalContentType]).toBe('application/json');
  });

  it('the broker dead-letters on its own after maxDeliveryCount (crash loop: the runtime never decides)', async () => {
    fresh();
    const { adapter } = await open();
    await adapter.ensure({ topic: 'orders', group: 'billing', retry: { maxAttempts: 2, maxDelayMs: 0 } });
    await adapter.ensure({ topic: 'orders.billing.dlq', group: 'dlq' });
    const attempts: number[] = [];
    // Raw consumption: every delivery is handed back, as a consumer that keeps crashing would.
    const consumption = await adapter.consume({ topic: 'orders', group: 'billing', ensure: false, prefetch: 1, ordered: false }, (delivery: Delivery) => {
      attempts.push(delivery.attempt);
      void delivery.nack(0);
    });
    await adapter.send(wire('orders', {}));
    const dlq = ns.subscription('orders.billing.dlq', 'dlq');
    await waitFor(() => dlq.active.length === 1, 5_000, 'the broker dead letter');
    expect(attempts).toEqual([1, 2, 3]);
    expect(dlq.active[0]!.applicationProperties.DeadLetterReason).toBe('MaxDeliveryCountExceeded');
    await consumption.close();
  });

  it('never holds more than prefetch unsettled messages', async () => {
    fresh();
    const { broker } = await open();
    let handled = 0;
    await broker.subscribe(
      'orders',
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        handled++;
      },
      'billing',
      { ensure: true, concurrency: 3 },
    );
    await Promise.all(Array.from({ length: 30 }, (_, n) => broker.publish('orders', { body: n })));
    await waitFor(() => handled === 30, 10_000, () => `30 handled, got ${handled}`);
    expect(ns.maxLocked.get('orders/billing')).toBe(3);
  });

  it('closing a consumer abandons what it still holds: another consumer gets it with attempt 2', async () => {
    fresh();
    const first = await open();
    const second = await open();
    let release = (): void => {};
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const seen: string[] = [];
    const subscription = await first.broker.subscribe('orders', async () => void (seen.push('first'), await stuck), 'billing', { ensure: true, concurrency: 1 });
    await first.broker.publish('orders', { body: 'x' });
    await waitFor(() => seen.length === 1, 5_000, 'first delivery');
    const later: Message[] = [];
    await second.broker.subscribe('orders', (message) => void later.push(message), 'billing', { ensure: true });
    await subscription.close({ drainTimeoutMs: 20 });
    await waitFor(() => later.length === 1, 5_000, 'the redelivery');
    expect(later[0]!.attempt).toBe(2);
    expect(ns.callsOf('abandonMessage')).toHaveLength(1);
    release();
  });

  it('lock renewal keeps a long handler\'s lock; without it the lock expires and the message comes back', async () => {
    for (const renewal of [undefined, 0]) {
      fresh(30);
      const { broker } = await open(renewal === undefined ? {} : { maxAutoLockRenewalDurationInMs: renewal });
      const attempts: number[] = [];
      let done = 0;
      await broker.subscribe(
        'orders',
        async (message) => {
          attempts.push(message.attempt);
          if (message.attempt === 1) await new Promise((resolve) => setTimeout(resolve, 120));
          done++;
        },
        'billing',
        { ensure: true },
      );
      await broker.publish('orders', { body: 'slow' });
      await waitFor(() => done >= (renewal === undefined ? 1 : 2), 5_000, 'handled');
      if (renewal === undefined) {
        expect(attempts).toEqual([1]);
        expect(ns.callsOf('lockExpired')).toHaveLength(0);
      } else {
        expect(attempts).toEqual([1, 2]);
        expect(ns.callsOf('lockExpired')).toHaveLength(1);
      }
      await Promise.allSettled(brokers.splice(0).map((broker) => broker.close({ drainTimeoutMs: 200 })));
      ns.close();
    }
  });
});

describe('servicebus codec and registry', () => {
  it('registers as servicebus and declares its features', async () => {
    const double = new ServiceBusDouble();
    const broker = await create('servicebus', { client: double.client(), admin: double.admin(), logger: silentLogger });
    expect(broker.adapter.name).toBe('servicebus');
    expect(broker.features).toBe(SERVICEBUS_FEATURES);
    expect(SERVICEBUS_FEATURES).toMatchObject({ delay: 'emulated', attempts: 'broker', nativeDeadLetter: true, redeliversUnsettled: true });
    await broker.close();
  });

  it('the retry rule lets re-sends reach only their own group, and everything else through', () => {
    const rule = retryFilterExpression('orders', 'billing');
    expect(evaluateFilter(rule, {})).toBe(true);
    expect(evaluateFilter(rule, { 'omniqueue-retry-topic': 'orders', 'omniqueue-retry-group': 'billing' })).toBe(true);
    expect(evaluateFilter(rule, { 'omniqueue-retry-topic': 'orders', 'omniqueue-retry-group': 'audit' })).toBe(false);
    // A dead letter forwarded from another topic still carries the marker of its own topic.
    expect(evaluateFilter(retryFilterExpression('orders.billing.dlq', 'dlq'), { 'omniqueue-retry-topic': 'orders', 'omniqueue-retry-group': 'billing' })).toBe(true);
  });

  it('gives back the header names the Functions host lower-cased', () => {
    const hostView = { tenantId: 'acme', 'x-Trace': '1', plain: 'p', 'omniqueue-header-case': '["TenantId","X-Trace"]' };
    expect(restoreHeaderCase(hostView)).toMatchObject({ TenantId: 'acme', 'X-Trace': '1', plain: 'p' });
    expect(restoreHeaderCase({ tenantId: 'acme' })).toEqual({ tenantId: 'acme' });
    expect(lowerFirst('TenantId')).toBe('tenantId');
  });
});

function wire(topic: string, options: { key?: string }): Parameters<ServiceBusAdapter['send']>[0] {
  const payload = textEncoder.encode('{"n":1}');
  return { id: `id-${Math.random()}`, topic, key: options.key, headers: { 'content-type': 'application/json' }, payload, body: undefined, publishedAt: Date.now(), delayMs: 0 };
}
