import { randomUUID } from 'node:crypto';
import {
  Connection,
  ConnectionEvents,
  message as rheaMessage,
  ReceiverEvents,
  type AwaitableSender,
  type ConnectionOptions,
  type EventContext,
  type Delivery as RheaDelivery,
  type Message as RheaMessage,
  type Receiver,
} from 'rhea-promise';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, Delivery, DeliveryListener, EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConnectionError, PublishError } from '../../runtime/errors.js';
import { WireHeader } from '../../runtime/wire.js';
import { ArtemisManagement } from './ArtemisManagement.js';
import { fqqn, queueName } from './names.js';

/** Settings of the Artemis adapter. */
export interface ArtemisAdapterOptions {
  /** Broker host. Default `127.0.0.1`. */
  readonly host?: string;
  /** AMQP port. Default 5672. */
  readonly port?: number;
  /** SASL PLAIN user. */
  readonly username?: string;
  /** SASL PLAIN password. */
  readonly password?: string;
  /** How long a publish waits for the broker's disposition. Default 30,000 ms. */
  readonly sendTimeoutMs?: number;
  /** Extra rhea connection options (TLS, idle timeout …), passed through. */
  readonly connectionOptions?: Partial<ConnectionOptions>;
}

/**
 * What the Artemis adapter can do. Messages are durable and groups are durable queues, so both
 * survive a broker restart. `attempt` is the AMQP header's delivery-count + 1 (Artemis counts a
 * `modified(delivery-failed)` settlement and a consumer that vanished). `nack(delay)` re-sends the
 * message to the group's own queue as a scheduled message (`x-opt-delivery-time`, native in
 * Artemis) carrying `omniqueue-attempt`, then accepts the original. Dead letters go to the
 * runtime's dead-letter topic (not Artemis's DLA).
 */
export const ARTEMIS_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: true,
  retainsWhileOffline: true,
  orderingPerKey: false,
  delay: 'native',
  attempts: 'broker',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
});

const textEncoder = new TextEncoder();

/** The native side of an Artemis delivery, exposed as `message.raw`. */
export interface ArtemisRawDelivery {
  /** The AMQP message as rhea decoded it. */
  readonly message: RheaMessage;
  /** The fully-qualified queue it came from. */
  readonly queue: string;
}

/**
 * ActiveMQ Artemis over AMQP 1.0 (`rhea-promise`). A topic is a multicast address; a group is a
 * durable multicast queue `<topic>.<group>` on it, created through the broker's management address
 * (`createQueue`, idempotent) and read with fully-qualified addressing `<topic>::<topic>.<group>`.
 * Publishes are durable messages whose payload is a data section, headers application properties
 * and key the AMQP `group-id`; they resolve on the broker's `accepted`. Credit = prefetch: a
 * receiver never has more unsettled deliveries than that. Ack = `accepted`, nack =
 * `modified(delivery-failed)`; see {@link ARTEMIS_FEATURES} for delays.
 */
export class ArtemisAdapter implements Adapter {
  readonly name = 'artemis';
  readonly features = ARTEMIS_FEATURES;
  readonly #options: ArtemisAdapterOptions;
  readonly #senders = new Map<string, Promise<AwaitableSender>>();
  readonly #consumers = new Set<ArtemisConsumer>();
  readonly #ensured = new Set<string>();
  #connection: Connection | undefined;
  #management: ArtemisManagement | undefined;
  #closed = false;
  /** Bumped on every disconnect: deliveries of an earlier connection are settled by the broker already. */
  epoch = 0;

  constructor(options: ArtemisAdapterOptions = {}) {
    this.#options = options;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The artemis adapter');
    if (this.#connection) return;
    const connection = new Connection({
      host: this.#options.host ?? '127.0.0.1',
      port: this.#options.port ?? 5672,
      username: this.#options.username,
      password: this.#options.password,
      transport: 'tcp',
      reconnect: true,
      initial_reconnect_delay: 100,
      max_reconnect_delay: 2_000,
      container_id: `omniqueue-${randomUUID()}`,
      // Without it Nagle's algorithm meets delayed ACKs: ~40 ms per small send.
      noDelay: true,
      ...this.#options.connectionOptions,
    } as ConnectionOptions);
    try {
      await connection.open();
    } catch (error) {
      throw new ConnectionError(`Could not connect to Artemis at ${this.#options.host ?? '127.0.0.1'}:${this.#options.port ?? 5672}: ${(error as Error).message}`, { cause: error });
    }
    connection.on(ConnectionEvents.disconnected, () => {
      this.epoch++;
      this.#management?.reset();
    });
    this.#connection = connection;
    this.#management = new ArtemisManagement(connection);
  }

  async ensure(request: EnsureRequest): Promise<void> {
    if (request.group === undefined) return; // The address is created with the first sender (multicast).
    await this.#ensureQueue(request.topic, request.group);
  }

  async send(message: WireMessage): Promise<void> {
    if (this.#closed) throw new ClosedError('The artemis adapter');
    const amqp: RheaMessage = {
      message_id: message.id,
      durable: true,
      creation_time: new Date(message.publishedAt),
      application_properties: { ...message.headers },
      body: rheaMessage.data_section(Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength)),
    };
    if (message.key !== undefined) amqp.group_id = message.key;
    const contentType = message.headers[WireHeader.ContentType];
    if (contentType !== undefined) amqp.content_type = contentType;
    if (message.delayMs > 0) amqp.message_annotations = { 'x-opt-delivery-time': message.publishedAt + message.delayMs };
    await this.sendTo(message.topic, true, amqp);
  }

  /** Sends one AMQP message to an address (`multicast` for a topic) and waits for `accepted`. */
  async sendTo(address: string, multicast: boolean, amqp: RheaMessage): Promise<void> {
    const connection = this.#open();
    let sender: AwaitableSender;
    try {
      sender = await this.#sender(connection, address, multicast);
    } catch (error) {
      throw new ConnectionError(`Artemis: could not open a sender to '${address}': ${(error as Error).message}`, { cause: error });
    }
    try {
      await sender.send(amqp, { timeoutInSeconds: (this.#options.sendTimeoutMs ?? 30_000) / 1000 });
    } catch (error) {
      throw new PublishError(`Artemis did not accept the message for '${address}': ${(error as Error).message}`, { cause: error });
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    const connection = this.#open();
    await this.#ensureQueue(request.topic, request.group);
    const consumer = new ArtemisConsumer(this, request.topic, request.group, request.prefetch, onDelivery, () => this.#consumers.delete(consumer));
    await consumer.open(connection);
    this.#consumers.add(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    // Sends under way were awaited by the runtime; closing the connection ends every link with it.
    await Promise.allSettled([...this.#senders.values()]);
    this.#management?.reset();
    await this.#connection?.close().catch(() => {});
  }

  async #ensureQueue(topic: string, group: string): Promise<void> {
    const name = queueName(topic, group);
    if (this.#ensured.has(name)) return;
    this.#open();
    const configuration = { name, address: topic, 'routing-type': 'MULTICAST', durable: true, 'auto-create-address': true };
    try {
      await this.#management!.invoke('createQueue', [JSON.stringify(configuration), true]);
    } catch (error) {
      throw new ConnectionError(`Artemis: could not create queue '${name}' on address '${topic}': ${(error as Error).message}`, { cause: error });
    }
    this.#ensured.add(name);
  }

  #open(): Connection {
    if (this.#closed) throw new ClosedError('The artemis adapter');
    if (!this.#connection) throw new ConnectionError('The artemis adapter is not connected: call init() first.');
    return this.#connection;
  }

  #sender(connection: Connection, address: string, multicast: boolean): Promise<AwaitableSender> {
    let sender = this.#senders.get(address);
    if (!sender) {
      sender = connection.createAwaitableSender({ target: multicast ? { address, capabilities: ['topic'] } : { address } });
      sender.catch(() => this.#senders.delete(address));
      this.#senders.set(address, sender);
    }
    return sender;
  }
}

/** One receiver on a group's queue. */
class ArtemisConsumer implements Consumption {
  readonly queue: string;
  /** Deliveries handed out and not settled yet. */
  readonly unsettled = new Set<ArtemisDelivery>();
  #receiver: Receiver | undefined;
  #stopped = false;
  #closed = false;

  constructor(
    private readonly adapter: ArtemisAdapter,
    readonly topic: string,
    readonly group: string,
    private readonly prefetch: number,
    private readonly listener: DeliveryListener,
    private readonly onClosed: () => void,
  ) {
    this.queue = fqqn(topic, group);
  }

  async open(connection: Connection): Promise<void> {
    const receiver = await connection.createReceiver({
      name: `omniqueue-${randomUUID()}`,
      source: { address: this.queue },
      credit_window: 0,
      autoaccept: false,
    });
    receiver.on(ReceiverEvents.message, (context: EventContext) => this.#receive(context));
    this.#receiver = receiver;
    receiver.addCredit(this.prefetch);
  }

  #receive(context: EventContext): void {
    const delivery = context.delivery;
    const message = context.message;
    if (!delivery || !message) return;
    if (this.#stopped) {
      delivery.release({ delivery_failed: false });
      return;
    }
    const handed = new ArtemisDelivery(this.adapter, this, message, delivery, this.adapter.epoch);
    this.unsettled.add(handed);
    this.listener(handed);
  }

  /** A delivery was settled: one more credit, unless stopped. */
  settled(delivery: ArtemisDelivery): void {
    this.unsettled.delete(delivery);
    if (!this.#stopped && this.#receiver?.isOpen()) this.#receiver.addCredit(1);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#receiver?.isOpen()) this.#receiver.drainCredit();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.stop();
    this.#closed = true;
    this.onClosed();
    // Hand back what is still unsettled as failed deliveries, so Artemis counts the attempt.
    for (const delivery of [...this.unsettled]) delivery.giveBack();
    await this.#receiver?.close().catch(() => {});
  }
}

/** One received AMQP message. */
class ArtemisDelivery implements Delivery {
  readonly payload: Uint8Array | string;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string | undefined;
  readonly timestamp: number | undefined;
  readonly raw: ArtemisRawDelivery;
  #settled = false;

  constructor(
    private readonly adapter: ArtemisAdapter,
    private readonly consumer: ArtemisConsumer,
    private readonly message: RheaMessage,
    private readonly delivery: RheaDelivery,
    private readonly epoch: number,
  ) {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.application_properties ?? {})) {
      if (value !== undefined && value !== null) headers[name] = typeof value === 'string' ? value : String(value);
    }
    if (headers[WireHeader.ContentType] === undefined && message.content_type) headers[WireHeader.ContentType] = String(message.content_type);
    this.headers = headers;
    this.payload = payloadOf(message.body);
    this.key = message.group_id ?? undefined;
    const base = Number(headers[WireHeader.Attempt]);
    this.attempt = (Number.isInteger(base) && base >= 1 ? base : 1) + (message.delivery_count ?? 0);
    this.nativeId = message.message_id === undefined ? undefined : String(message.message_id);
    this.timestamp = message.creation_time instanceof Date ? message.creation_time.getTime() : undefined;
    this.raw = { message, queue: consumer.queue };
  }

  async ack(): Promise<void> {
    if (!this.#begin()) return;
    this.delivery.accept();
    this.consumer.settled(this);
  }

  async nack(delayMs: number): Promise<void> {
    if (!this.#begin()) return;
    if (delayMs <= 0) {
      this.delivery.modified({ delivery_failed: true, undeliverable_here: false });
      this.consumer.settled(this);
      return;
    }
    // A scheduled copy to this group's queue only, then the original is accepted.
    const { delivery_count: _count, message_annotations: annotations, application_properties: properties, ...rest } = this.message;
    const copy: RheaMessage = {
      ...rest,
      durable: true,
      application_properties: { ...properties, [WireHeader.Attempt]: String(this.attempt + 1) },
      message_annotations: { ...stripRouting(annotations), 'x-opt-delivery-time': Date.now() + delayMs },
      body: typeof this.payload === 'string' ? this.message.body : rheaMessage.data_section(Buffer.from(this.payload)),
    };
    try {
      await this.adapter.sendTo(this.consumer.queue, false, copy);
    } catch (error) {
      // Not re-sent: hand it back to the broker at once rather than lose it.
      if (this.epoch === this.adapter.epoch) this.delivery.modified({ delivery_failed: true, undeliverable_here: false });
      this.consumer.settled(this);
      throw error;
    }
    if (this.epoch === this.adapter.epoch) this.delivery.accept();
    this.consumer.settled(this);
  }

  /** Returns the delivery to the queue as failed (its consumer closes); later settlements are no-ops. */
  giveBack(): void {
    if (!this.#begin()) return;
    this.delivery.modified({ delivery_failed: true, undeliverable_here: false });
    this.consumer.settled(this);
  }

  /** True when this call settles the delivery; false when it was settled or its connection is gone. */
  #begin(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    // After a reconnect the broker has already put the message back: settling it here would be wrong.
    return this.epoch === this.adapter.epoch;
  }
}

function payloadOf(body: unknown): Uint8Array | string {
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object' && 'content' in body && (body as { content: unknown }).content instanceof Uint8Array) return (body as { content: Uint8Array }).content;
  if (body === undefined || body === null) return new Uint8Array(0);
  return textEncoder.encode(JSON.stringify(body));
}

function stripRouting(annotations: Record<string, unknown> | undefined): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(annotations ?? {})) {
    if (name !== 'x-opt-delivery-time' && name !== 'x-opt-ORIG-ADDRESS' && !name.startsWith('x-opt-ORIG')) kept[name] = value;
  }
  return kept;
}
