/**
 * Artemis interop with plain rhea-promise code (no OmniQueue on the other side), both ways:
 * - an OmniQueue publish is read by a plain AMQP receiver subscribed to the topic's multicast
 *   address: a durable message whose body is a data section holding the JSON bytes, the headers as
 *   application properties, the id as message-id, the key as group-id, `application/json` as
 *   content-type;
 * - a plain rhea producer's message (data section, application properties, message-id, group-id)
 *   is consumed by an OmniQueue handler with its body, headers, id and key intact.
 */
import { randomBytes } from 'node:crypto';
import { Connection, message as rheaMessage, ReceiverEvents, type ConnectionOptions, type EventContext, type Message as RheaMessage } from 'rhea-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtemisAdapter } from '../../adapters/artemis/ArtemisAdapter.js';
import { queueName } from '../../adapters/artemis/names.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import type { Message } from '../../runtime/message.js';
import { waitFor } from '../conformance/waitFor.js';
import { ARTEMIS, artemisMissing } from '../brokers/artemis.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { ARTEMIS_LOCK } from './artemisLock.js';
import { deleteArtemisQueues, subscriptionQueues } from './queueStats.js';

const missing = await artemisMissing();
// Shared lock: the fault tests' broker restart waits until this file is done.
const lock = missing === undefined ? await holdFileLock(ARTEMIS_LOCK, 'shared') : undefined;
const run = randomBytes(4).toString('hex');
const queues: string[] = [];

describe.skipIf(missing !== undefined)(`artemis interop with plain rhea${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let broker: Broker;
  let plain: Connection;

  beforeAll(async () => {
    broker = new Broker(new ArtemisAdapter(ARTEMIS), { logger: silentLogger });
    await broker.init();
    plain = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false } as ConnectionOptions);
    await plain.open();
  });

  afterAll(async () => {
    await broker?.close();
    await plain?.close().catch(() => {});
    if (missing === undefined) await deleteArtemisQueues(queues);
    await lock?.[Symbol.asyncDispose]();
  });

  it('a plain rhea receiver reads an OmniQueue message: JSON bytes in a data section, headers as application properties', async () => {
    const topic = `artemis_interop_out_${run}`;
    // A plain subscriber of the multicast address (Artemis makes it a subscription queue for the link).
    const received: RheaMessage[] = [];
    const receiver = await plain.createReceiver({ source: { address: topic, capabilities: ['topic'] }, credit_window: 10, autoaccept: true });
    receiver.on(ReceiverEvents.message, (context: EventContext) => void received.push(context.message!));
    try {
      const body = { orderId: 'o-1', total: 42.5, lines: [{ sku: 'a', qty: 2 }], note: 'é ✓' };
      const { id } = await broker.publish(topic, { body, key: 'customer-7', headers: { tenant: 'acme', priority: 3, urgent: true } });
      await waitFor(() => received.length >= 1, 10_000, 'the plain receiver to get the message');
      const message = received[0]!;

      // Body: one data section with the UTF-8 JSON bytes, nothing OmniQueue-specific to unwrap.
      const section = message.body as { typecode: number; content: Buffer };
      expect(section.typecode, 'AMQP data section').toBe(0x75);
      expect(Buffer.isBuffer(section.content)).toBe(true);
      expect(JSON.parse(section.content.toString('utf8'))).toEqual(body);

      // Headers: application properties, as strings; OmniQueue's metadata beside them.
      const properties = message.application_properties!;
      expect(properties.tenant).toBe('acme');
      expect(properties.priority).toBe('3');
      expect(properties.urgent).toBe('true');
      expect(properties['omniqueue-id']).toBe(id);
      expect(properties['content-type']).toBe('application/json');
      expect(Math.abs(Number(properties['omniqueue-published-at']) - Date.now()), 'omniqueue-published-at, epoch ms').toBeLessThan(60_000);

      // Native AMQP properties and header.
      expect(message.message_id).toBe(id);
      expect(message.group_id).toBe('customer-7');
      expect(message.content_type).toBe('application/json');
      expect(message.durable).toBe(true);
      expect(message.creation_time).toBeInstanceOf(Date);
    } finally {
      await receiver.close().catch(() => {});
    }
  });

  it('an OmniQueue handler consumes a plain rhea producer message with body, headers, id and key intact', async () => {
    const topic = `artemis_interop_in_${run}`;
    const group = 'billing';
    queues.push(...subscriptionQueues(topic, group));
    const received: Message[] = [];
    await broker.subscribe(topic, (message) => void received.push(message), group, { ensure: true });

    const sender = await plain.createAwaitableSender({ target: { address: topic, capabilities: ['topic'] } });
    try {
      const body = { invoice: 'INV-9', amount: 120, currency: 'EUR', tags: ['x', 'y'] };
      await sender.send({
        message_id: `plain-${run}`,
        durable: true,
        group_id: 'account-3',
        content_type: 'application/json',
        application_properties: { tenant: 'globex', 'x-count': 7, flag: false },
        body: rheaMessage.data_section(Buffer.from(JSON.stringify(body), 'utf8')),
      });
      // And one with no content type and no id of its own: the body is still read as JSON bytes.
      await sender.send({ durable: true, application_properties: { tenant: 'initech' }, body: rheaMessage.data_section(Buffer.from('{"bare":true}')) });

      await waitFor(() => received.length >= 2, 10_000, () => `both plain messages, got ${received.length}`);
      const first = received.find((message) => message.id === `plain-${run}`)!;
      expect(first, 'message with the plain producer id').toBeDefined();
      expect(first.body).toEqual(body);
      expect(first.headers).toMatchObject({ tenant: 'globex', 'x-count': '7', flag: 'false' });
      expect(Object.keys(first.headers).filter((name) => name.startsWith('omniqueue-'))).toEqual([]);
      expect(first.key).toBe('account-3');
      expect(first.topic).toBe(topic);
      expect(first.group).toBe(group);
      expect(first.attempt).toBe(1);
      expect(first.contentType).toBe('application/json');

      const bare = received.find((message) => message.id !== `plain-${run}`)!;
      expect(bare.body).toEqual({ bare: true });
      expect(bare.headers).toMatchObject({ tenant: 'initech' });
      expect(bare.key).toBeUndefined();
      expect(typeof bare.id).toBe('string');
      expect(bare.id.length).toBeGreaterThan(0);
    } finally {
      await sender.close().catch(() => {});
    }
  });
});
