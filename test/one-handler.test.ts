/**
 * One handler, every runtime: the handler files of `examples/orders` run unchanged
 * (a) by the container worker on the memory adapter and on RabbitMQ, (b) by the Lambda SQS trigger
 * through the local event-source runner on the SQS/SNS emulator, and (c) by the Azure Functions
 * Service Bus trigger with real InvocationContext objects. Same inputs, same verdicts (what was
 * dead-lettered, why, after how many attempts), same side effects on the downstream stand-ins.
 */
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { sqsQueueName } from '../adapters/sqs/names.js';
import { SqsAdapter } from '../adapters/sqs/SqsAdapter.js';
import billing, { schema as billingSchema } from '../examples/orders/handlers/billing.js';
import inventory, { schema as inventorySchema } from '../examples/orders/handlers/inventory.js';
import notifications from '../examples/orders/handlers/notifications.js';
import { downstream, resetDownstream } from '../examples/orders/downstream.js';
import type { Order } from '../examples/orders/order.js';
import { Broker, DEAD_LETTER_GROUP, deadLetterTopicOf } from '../runtime/Broker.js';
import { silentLogger } from '../runtime/Logger.js';
import type { Handler, Message } from '../runtime/message.js';
import { loadTopology, resolveTopology, type AdapterSettings, type LoadedTopology } from '../runtime/topology.js';
import { WireHeader } from '../runtime/wire.js';
import { Worker } from '../runtime/worker/Worker.js';
import { serviceBusTrigger } from '../triggers/azure/index.js';
import { sqsHandler } from '../triggers/lambda/index.js';
import { LocalRunner } from '../triggers/lambda/localRunner.js';
import { FunctionsHostDouble, publishedByOmniQueue } from './azure/invocationContext.js';
import { AMQP_URL, deleteRabbitTopics, rabbitMissing } from './brokers/rabbitmq.js';
import { SQS_CLIENT_CONFIG, SQS_ENDPOINT, sqsMissing, sqsTestOptions } from './brokers/sqs.js';

const CONFIG = fileURLToPath(new URL('../examples/orders/omniqueue.config.ts', import.meta.url));
const topology = await loadTopology(CONFIG);
const GROUPS = ['billing', 'inventory', 'notifications'] as const;
type GroupName = (typeof GROUPS)[number];
const HANDLERS: Record<GroupName, { handler: Handler<Order>; schema?: typeof billingSchema }> = {
  billing: { handler: billing, schema: billingSchema },
  inventory: { handler: inventory, schema: inventorySchema },
  notifications: { handler: notifications },
};
const retryOf = (group: GroupName) => topology.groups.find((candidate) => candidate.group === group)!.config.retry;

const order = (orderId: string, amount: number, customer = `${orderId}@example.com`): Order => ({ orderId, customer, amount, items: [{ sku: 'sku-1', quantity: 2 }] });
/** The same inputs for every runtime. */
const ORDERS: readonly Order[] = [
  order('order-1', 42),
  order('order-10', 15), // the warehouse times out on its first attempt: inventory nacks once
  order('order-13', -42), // billing throws every time: dead-lettered after its 3 attempts
  order('order-7', 5, 'not-an-e-mail'), // fails the schema of billing and inventory: dead-lettered at once
];

/** What a runtime did with the inputs. */
interface Outcome {
  readonly deadLetters: string[];
  readonly charges: Record<string, number>;
  readonly reservations: Record<string, number>;
  readonly emails: Record<string, string>;
}

const EXPECTED: Outcome = {
  deadLetters: ['billing order-13 max-attempts-exceeded after 3', 'billing order-7 schema-validation-failed after 1', 'inventory order-7 schema-validation-failed after 1'],
  charges: { 'order-1': 42, 'order-10': 15 },
  reservations: { 'order-1': 2, 'order-10': 2, 'order-13': 2 },
  emails: { 'order-1': 'order-1@example.com', 'order-10': 'order-10@example.com', 'order-13': 'order-13@example.com', 'order-7': 'not-an-e-mail' },
};

const done = (deadLetters: readonly string[]) =>
  deadLetters.length === EXPECTED.deadLetters.length && downstream.emails.size === 4 && downstream.reservations.size === 3 && downstream.charges.size === 2;

function outcome(deadLetters: readonly string[]): Outcome {
  return {
    deadLetters: [...deadLetters].sort(),
    charges: Object.fromEntries(downstream.charges),
    reservations: Object.fromEntries(downstream.reservations),
    emails: Object.fromEntries(downstream.emails),
  };
}

const deadLetterLine = (group: string, msg: Message) =>
  `${group} ${(msg.body as Order).orderId} ${msg.headers[WireHeader.DlqReason]} after ${msg.headers[WireHeader.DlqAttempts]}`;

/** (a) `omniqueue worker`'s Worker on the example topology, moved to `adapter` and a fresh topic. */
async function viaWorker(adapter: AdapterSettings, topic: string): Promise<Outcome> {
  resetDownstream();
  const moved: LoadedTopology = resolveTopology({ ...topology.config, adapter, topics: { [topic]: topology.config.topics.orders! } }, dirname(CONFIG));
  const worker = new Worker({ topology: moved, port: false, handleSignals: false, logger: pino({ level: 'silent' }) });
  await worker.start();
  const deadLetters: string[] = [];
  try {
    for (const group of GROUPS) {
      await worker.broker.subscribe(deadLetterTopicOf(topic, group), (msg) => void deadLetters.push(deadLetterLine(group, msg)), DEAD_LETTER_GROUP, { ensure: true });
    }
    for (const body of ORDERS) await worker.broker.publish(topic, { id: body.orderId, body });
    await expect.poll(() => done(deadLetters), { timeout: 30_000, interval: 50 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    return outcome(deadLetters);
  } finally {
    await worker.stop();
  }
}

const rabbit = await rabbitMissing();
const sqs = await sqsMissing();

describe('one handler, every runtime', () => {
  it('the worker on the memory adapter', async () => {
    expect(await viaWorker({ name: 'memory' }, 'orders')).toEqual(EXPECTED);
  });

  const rabbitTopic = `orders_one_${randomBytes(3).toString('hex')}`;
  afterAll(async () => {
    if (rabbit === undefined) await deleteRabbitTopics([rabbitTopic, ...GROUPS.map((group) => deadLetterTopicOf(rabbitTopic, group))]);
  });
  it.skipIf(rabbit !== undefined)(`the worker on RabbitMQ${rabbit ? ` — skipped: ${rabbit}` : ''}`, async () => {
    expect(await viaWorker({ name: 'rabbitmq', url: AMQP_URL }, rabbitTopic)).toEqual(EXPECTED);
  });

  it.skipIf(sqs !== undefined)(`Lambda: sqsHandler through the local event-source runner on the emulator${sqs ? ` — skipped: ${sqs}` : ''}`, async () => {
    resetDownstream();
    const topic = `orders-one-${randomBytes(3).toString('hex')}`;
    const broker = new Broker(new SqsAdapter(sqsTestOptions()), { logger: silentLogger });
    await broker.init();
    const deadLetters: string[] = [];
    const runners: LocalRunner[] = [];
    try {
      for (const group of GROUPS) {
        await broker.subscribe(topic, () => undefined, group, { ensure: true, retry: retryOf(group) }).then((subscription) => subscription.close());
        await broker.subscribe(deadLetterTopicOf(topic, group), (msg) => void deadLetters.push(deadLetterLine(group, msg)), DEAD_LETTER_GROUP, { ensure: true });
        const { handler, schema } = HANDLERS[group];
        const lambda = sqsHandler(handler, { topic: 'orders', group, schema, retry: retryOf(group), logger: silentLogger, sqs: { ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials } } });
        runners.push(await new LocalRunner({ queue: sqsQueueName(topic, group, false), handler: lambda, waitTimeSeconds: 1, sqs: { region: SQS_CLIENT_CONFIG.region, endpoint: SQS_ENDPOINT, credentials: { ...SQS_CLIENT_CONFIG.credentials } } }).start());
      }
      for (const body of ORDERS) await broker.publish(topic, { id: body.orderId, body });
      await expect.poll(() => done(deadLetters), { timeout: 60_000, interval: 100 }).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(outcome(deadLetters)).toEqual(EXPECTED);
    } finally {
      await Promise.all(runners.map((runner) => runner.stop()));
      await broker.close({ drainTimeoutMs: 1_000 });
    }
  });

  it('Azure Functions: serviceBusTrigger with SDK bindings, real InvocationContext objects', async () => {
    resetDownstream();
    const deadLetters: string[] = [];
    for (const group of GROUPS) {
      const maxAttempts = retryOf(group)?.maxAttempts ?? 5;
      const host = new FunctionsHostDouble({ sdkBinding: true, cardinality: 'many', maxDeliveryCount: maxAttempts + 1 });
      host.send(...ORDERS.map((body) => publishedByOmniQueue(body, { id: body.orderId })));
      const { handler, schema } = HANDLERS[group];
      await host.drain(serviceBusTrigger(handler, { app: false, connection: 'ServiceBusConnection', topic: 'orders', group, cardinality: 'many', sdkBinding: true, schema, retry: retryOf(group), logger: silentLogger }));
      for (const message of host.deadLetters) {
        deadLetters.push(`${group} ${(JSON.parse(message.body.toString('utf8')) as Order).orderId} ${message.deadLetterReason} after ${message.deliveryCount}`);
      }
    }
    expect(outcome(deadLetters)).toEqual(EXPECTED);
  });
});
