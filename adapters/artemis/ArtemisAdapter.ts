import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  Connection,
  ConnectionEvents,
  message as rheaMessage,
  ReceiverEvents,
  SenderEvents,
  type AwaitableSender,
  type ConnectionOptions,
  type EventContext,
  type Delivery as RheaDelivery,
  type Message as RheaMessage,
  type Receiver,
} from 'rhea-promise';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, Delivery, DeliveryListener, EnsureRequest, GroupPrune, TopologyChange, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, GroupInUseError, OmniQueueError, PublishError } from '../../runtime/errors.js';
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
  /**
   * How long a publish (or an `ensure`) waits, in all: for the connection while the adapter is
   * reconnecting, then for the broker's disposition. Default 30,000 ms.
   */
  readonly sendTimeoutMs?: number;
  /** First pause before a reconnect attempt; doubles up to {@link ArtemisAdapterOptions.maxReconnectDelayMs}. Default 100 ms. */
  readonly initialReconnectDelayMs?: number;
  /** Longest pause between reconnect attempts. Default 2,000 ms. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Extra rhea connection options (TLS, idle timeout …), passed through. `reconnect` is always
   * off: the adapter reconnects itself, so that it can resume its consumers and fail the
   * publishes the lost connection left unconfirmed.
   */
  readonly connectionOptions?: Partial<ConnectionOptions>;
}

/**
 * What the Artemis adapter can do. Messages are durable and groups are durable queues, so both
 * survive a broker restart. `attempt` is the AMQP header's delivery-count + 1 (Artemis counts a
 * `modified(delivery-failed)` settlement — also sent for what a closing consumption still holds —
 * and deliveries open across a broker restart, but not the deliveries of a connection that
 * dropped, e.g. a killed process: those come back with the same attempt). `nack(delay)` re-sends the
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

/** One AMQP connection and everything opened on it; all of it dies with the connection. */
interface LiveConnection {
  readonly connection: Connection;
  readonly management: ArtemisManagement;
  readonly senders: Map<string, Promise<AwaitableSender>>;
  /** Aborted when this connection is lost: every send, link creation and management call on it gives up at once. */
  readonly lost: AbortController;
  /** Counts connections: deliveries of an earlier one were put back by the broker already. */
  readonly epoch: number;
}

/**
 * ActiveMQ Artemis over AMQP 1.0 (`rhea-promise`). A topic is a multicast address; a group is a
 * durable multicast queue `<topic>.<group>` on it, created through the broker's management address
 * (`createQueue`, idempotent) and read with fully-qualified addressing `<topic>::<topic>.<group>`.
 * Publishes are durable messages whose payload is a data section, headers application properties
 * and key the AMQP `group-id`; they resolve on the broker's `accepted`. Credit = prefetch: a
 * receiver never has more unsettled deliveries than that. Ack = `accepted`, nack =
 * `modified(delivery-failed)`; see {@link ARTEMIS_FEATURES} for delays.
 *
 * Connection loss: the adapter opens a new connection with exponential backoff and re-attaches
 * every consumer with its full credit. A publish made while disconnected waits for the new
 * connection up to `sendTimeoutMs`, then rejects with `ConnectionError`; a publish whose
 * connection dies before the broker's disposition rejects with `ConnectionError` at once (it may
 * or may not be stored: publish it again). Deliveries of the lost connection are back in the
 * broker's queue; settling them afterwards is a no-op.
 */
export class ArtemisAdapter implements Adapter {
  readonly name = 'artemis';
  readonly features = ARTEMIS_FEATURES;
  readonly #options: ArtemisAdapterOptions;
  readonly #consumers = new Set<ArtemisConsumer>();
  readonly #ensured = new Set<string>();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #waiters = new Set<{ resolve: (link: LiveConnection) => void; reject: (error: Error) => void }>();
  #link: LiveConnection | undefined;
  #epoch = 0;
  #connected = false;
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelayMs = 0;

  constructor(options: ArtemisAdapterOptions = {}) {
    this.#options = options;
  }

  /** The number of the live connection (1 for the first, bumped on every reconnect); -1 while disconnected. */
  get epoch(): number {
    return this.#link?.epoch ?? -1;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The artemis adapter');
    if (this.#connected) return;
    this.#link = await this.#openLink();
    this.#connected = true;
  }

  async ensure(request: EnsureRequest): Promise<void> {
    if (request.group === undefined) await this.#ensureAddress(request.topic);
    else await this.#ensureQueue(request.topic, request.group);
  }

  /**
   * What {@link ArtemisAdapter.ensure} would create, read through the management address: the
   * topic's multicast address and, with a group, its durable queue. Changes nothing.
   */
  async plan(request: EnsureRequest): Promise<TopologyChange[]> {
    const { management } = await this.#current(this.#timeoutMs());
    const address = await management.attribute(`address.${request.topic}`, 'routingTypes');
    const changes: TopologyChange[] = [{ action: address.found ? 'unchanged' : 'create', resource: `address ${request.topic} (multicast)` }];
    if (request.group === undefined) return changes;
    const name = queueName(request.topic, request.group);
    const queue = await management.attribute(`queue.${name}`, 'address');
    if (queue.found && queue.value !== request.topic) {
      throw new ConfigError(`Artemis queue '${name}' exists on address '${String(queue.value)}', not on '${request.topic}': delete or rename it.`);
    }
    changes.push({ action: queue.found ? 'unchanged' : 'create', resource: `queue ${name} (multicast, durable) on address ${request.topic}` });
    return changes;
  }

  /**
   * The durable queues bound to the topic's address that are not a kept group's queue (see
   * {@link queueName}), read through the management address. Temporary and non-durable queues (a
   * plain client's subscription) are left alone. A queue with consumers attached is blocked.
   */
  async planPrune(topic: string, keepGroups: readonly string[]): Promise<GroupPrune[]> {
    const { management } = await this.#current(this.#timeoutMs());
    const address = await management.attribute(`address.${topic}`, 'queueNames');
    if (!address.found || !Array.isArray(address.value)) return [];
    const keep = new Set(keepGroups.map((group) => queueName(topic, group)));
    const prunes: GroupPrune[] = [];
    for (const name of address.value.map(String)) {
      if (keep.has(name)) continue;
      const read = async (attribute: string): Promise<unknown> => (await management.attribute(`queue.${name}`, attribute)).value;
      if ((await read('durable')) !== true || (await read('temporary')) === true) continue;
      const consumers = Number(await read('consumerCount'));
      const messages = Number(await read('messageCount'));
      prunes.push({
        topic,
        group: name,
        changes: [{ action: 'delete', resource: `queue ${name} (multicast, durable) on address ${topic}`, ...(messages > 0 ? { detail: `${messages} messages in it` } : {}) }],
        ...(consumers > 0 ? { blockedBy: `${consumers} consumer(s) attached` } : {}),
      });
    }
    return prunes;
  }

  /** Destroys queue `target.group` (its messages go with it) unless consumers are attached: then rejects with `GroupInUseError`. */
  async prune(target: GroupPrune): Promise<void> {
    const { management } = await this.#current(this.#timeoutMs());
    const consumers = await management.attribute(`queue.${target.group}`, 'consumerCount');
    if (!consumers.found) return;
    if (Number(consumers.value) > 0) throw new GroupInUseError(`Artemis queue '${target.group}' has ${String(consumers.value)} consumer(s) attached.`);
    const answer = await management.request({ _AMQ_ResourceName: 'broker', _AMQ_OperationName: 'destroyQueue' }, [target.group, false, false]);
    if (answer.succeeded || !(await management.attribute(`queue.${target.group}`, 'consumerCount')).found) {
      this.#ensured.delete(target.group);
      return;
    }
    const reason = JSON.stringify(answer.body);
    if (/consumer/i.test(reason)) throw new GroupInUseError(`Artemis refused to destroy queue '${target.group}': ${reason}`);
    throw new ConnectionError(`Artemis: could not destroy queue '${target.group}': ${reason}`);
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

  /**
   * Sends one AMQP message to an address (`multicast` for a topic) and waits for `accepted`. While
   * disconnected it waits for the connection, all within `sendTimeoutMs`.
   */
  async sendTo(address: string, multicast: boolean, amqp: RheaMessage): Promise<void> {
    const task = this.#sendTo(address, multicast, amqp);
    this.#inFlight.add(task);
    try {
      await task;
    } finally {
      this.#inFlight.delete(task);
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closed) throw new ClosedError('The artemis adapter');
    if (!this.#connected) throw new ConnectionError('The artemis adapter is not connected: call init() first.');
    await this.#ensureQueue(request.topic, request.group);
    const consumer = new ArtemisConsumer(this, request.topic, request.group, request.prefetch, onDelivery, () => this.#consumers.delete(consumer));
    const link = await this.#current(this.#timeoutMs());
    // Added first: a reconnect during the attach attaches it again.
    this.#consumers.add(consumer);
    try {
      await consumer.attach(link, true);
    } catch (error) {
      this.#consumers.delete(consumer);
      throw error;
    }
    return consumer;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    for (const waiter of [...this.#waiters]) waiter.reject(new ClosedError('The artemis adapter'));
    this.#waiters.clear();
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    // Every publish under way resolves or rejects (each is bounded by sendTimeoutMs) before the connection goes.
    await Promise.allSettled([...this.#inFlight]);
    const link = this.#link;
    this.#link = undefined;
    if (link) {
      link.management.reset();
      await link.connection.close({ abortSignal: AbortSignal.timeout(5_000) }).catch(() => {});
      link.lost.abort();
    }
  }

  /** True while `link` is the adapter's live connection (for its consumers). @internal */
  isCurrent(link: LiveConnection): boolean {
    return this.#link === link;
  }

  async #sendTo(address: string, multicast: boolean, amqp: RheaMessage): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs();
    const link = await this.#current(deadline - Date.now());
    let sender: AwaitableSender;
    try {
      sender = await this.#sender(link, address, multicast);
      if (!sender.sendable()) await waitSendable(sender, link, deadline - Date.now());
    } catch (error) {
      throw this.#translate(error, link, `Artemis: could not open a sender to '${address}'`, ConnectionError);
    }
    try {
      await sender.send(amqp, { timeoutInSeconds: Math.max(1, deadline - Date.now()) / 1000, abortSignal: link.lost.signal });
    } catch (error) {
      throw this.#translate(error, link, `Artemis did not accept the message for '${address}'`, PublishError);
    }
  }

  #translate(error: unknown, link: LiveConnection, what: string, kind: typeof ConnectionError | typeof PublishError): OmniQueueError {
    if (error instanceof OmniQueueError) return error;
    if (link.lost.signal.aborted) {
      return this.#closed
        ? new ClosedError('The artemis adapter', { cause: error })
        : new ConnectionError(`${what}: the connection was lost before the broker answered (the message may or may not be stored).`, { cause: error });
    }
    return new kind(`${what}: ${(error as Error).message}`, { cause: error });
  }

  async #ensureAddress(topic: string): Promise<void> {
    const key = `address ${topic}`;
    if (this.#ensured.has(key)) return;
    const { management } = await this.#current(this.#timeoutMs());
    try {
      const address = await management.attribute(`address.${topic}`, 'routingTypes');
      if (!address.found) {
        const created = await management.request({ _AMQ_ResourceName: 'broker', _AMQ_OperationName: 'createAddress' }, [topic, 'MULTICAST']);
        // Someone else may have created it meanwhile: only a failure that leaves it missing counts.
        if (!created.succeeded && !(await management.attribute(`address.${topic}`, 'routingTypes')).found) {
          throw new ConnectionError(`createAddress failed: ${JSON.stringify(created.body)}`);
        }
      }
    } catch (error) {
      throw new ConnectionError(`Artemis: could not create address '${topic}': ${(error as Error).message}`, { cause: error });
    }
    this.#ensured.add(key);
  }

  async #ensureQueue(topic: string, group: string): Promise<void> {
    const name = queueName(topic, group);
    if (this.#ensured.has(name)) return;
    const { management } = await this.#current(this.#timeoutMs());
    const configuration = { name, address: topic, 'routing-type': 'MULTICAST', durable: true, 'auto-create-address': true };
    try {
      await management.invoke('createQueue', [JSON.stringify(configuration), true]);
    } catch (error) {
      throw new ConnectionError(`Artemis: could not create queue '${name}' on address '${topic}': ${(error as Error).message}`, { cause: error });
    }
    this.#ensured.add(name);
  }

  #timeoutMs(): number {
    return this.#options.sendTimeoutMs ?? 30_000;
  }

  /** The live connection; while reconnecting, waits for it up to `timeoutMs`, then rejects with `ConnectionError`. */
  #current(timeoutMs: number): Promise<LiveConnection> {
    if (this.#closed) return Promise.reject(new ClosedError('The artemis adapter'));
    if (!this.#connected) return Promise.reject(new ConnectionError('The artemis adapter is not connected: call init() first.'));
    if (this.#link) return Promise.resolve(this.#link);
    return new Promise<LiveConnection>((resolve, reject) => {
      const waiter = {
        resolve: (link: LiveConnection) => (clearTimeout(timer), this.#waiters.delete(waiter), resolve(link)),
        reject: (error: Error) => (clearTimeout(timer), this.#waiters.delete(waiter), reject(error)),
      };
      const timer = setTimeout(
        () => waiter.reject(new ConnectionError(`Artemis at ${this.#where()} is unreachable: no connection within ${Math.round(timeoutMs)} ms (the adapter keeps reconnecting).`)),
        Math.max(0, timeoutMs),
      );
      this.#waiters.add(waiter);
    });
  }

  #where(): string {
    return `${this.#options.host ?? '127.0.0.1'}:${this.#options.port ?? 5672}`;
  }

  /** Opens a connection and wires its loss to the reconnect loop. Rejects with `ConnectionError`. */
  async #openLink(): Promise<LiveConnection> {
    const connection = new Connection({
      host: this.#options.host ?? '127.0.0.1',
      port: this.#options.port ?? 5672,
      username: this.#options.username,
      password: this.#options.password,
      transport: 'tcp',
      container_id: `omniqueue-${randomUUID()}`,
      // Without it Nagle's algorithm meets delayed ACKs: ~40 ms per small send.
      noDelay: true,
      ...this.#options.connectionOptions,
      reconnect: false,
    } as ConnectionOptions);
    try {
      await connection.open({ abortSignal: AbortSignal.timeout(this.#timeoutMs()) });
    } catch (error) {
      throw new ConnectionError(`Could not connect to Artemis at ${this.#where()}: ${(error as Error).message}`, { cause: error });
    }
    const lost = new AbortController();
    // One listener per send in flight on this connection.
    setMaxListeners(0, lost.signal);
    const link: LiveConnection = { connection, management: new ArtemisManagement(connection, lost.signal), senders: new Map(), lost, epoch: ++this.#epoch };
    const onLost = (): void => this.#lose(link);
    // A socket that drops gives `disconnected`; a broker that shuts down cleanly closes the connection first.
    connection.on(ConnectionEvents.disconnected, onLost);
    connection.on(ConnectionEvents.connectionError, onLost);
    connection.on(ConnectionEvents.connectionClose, onLost);
    return link;
  }

  /** The connection of `link` is gone: fail what waited on it, drop its deliveries, reconnect. */
  #lose(link: LiveConnection): void {
    if (link.lost.signal.aborted) return;
    link.lost.abort(new ConnectionError(`The connection to Artemis at ${this.#where()} was lost.`));
    link.management.reset();
    if (this.#link !== link) return;
    this.#link = undefined;
    for (const consumer of this.#consumers) consumer.detached();
    if (this.#closed) return;
    this.#reconnectDelayMs = this.#options.initialReconnectDelayMs ?? 100;
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delay = this.#reconnectDelayMs * (0.75 + Math.random() / 2);
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), delay);
  }

  async #reconnect(): Promise<void> {
    if (this.#closed || this.#link) return;
    let link: LiveConnection;
    try {
      link = await this.#openLink();
    } catch {
      if (this.#closed) return;
      this.#reconnectDelayMs = Math.min(this.#reconnectDelayMs * 2, this.#options.maxReconnectDelayMs ?? 2_000);
      this.#scheduleReconnect();
      return;
    }
    if (this.#closed) {
      link.lost.abort();
      await link.connection.close({ abortSignal: AbortSignal.timeout(5_000) }).catch(() => {});
      return;
    }
    this.#link = link;
    for (const waiter of [...this.#waiters]) waiter.resolve(link);
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.attach(link)));
  }

  #sender(link: LiveConnection, address: string, multicast: boolean): Promise<AwaitableSender> {
    let sender = link.senders.get(address);
    if (!sender) {
      sender = link.connection.createAwaitableSender({ target: multicast ? { address, capabilities: ['topic'] } : { address }, abortSignal: link.lost.signal });
      sender.catch(() => link.senders.delete(address));
      link.senders.set(address, sender);
    }
    return sender;
  }
}

/** Waits until `sender` has credit, the connection is lost, or `timeoutMs` passes. */
function waitSendable(sender: AwaitableSender, link: LiveConnection, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      sender.removeListener(SenderEvents.sendable, onSendable);
      link.lost.signal.removeEventListener('abort', onLost);
      if (error) reject(error);
      else resolve();
    };
    const onSendable = (): void => done();
    const onLost = (): void => done(new ConnectionError('The Artemis connection was lost while waiting for credit.'));
    const timer = setTimeout(() => done(new PublishError(`Artemis granted no credit to send to '${sender.address}' within ${Math.round(timeoutMs)} ms.`)), Math.max(0, timeoutMs));
    sender.on(SenderEvents.sendable, onSendable);
    link.lost.signal.addEventListener('abort', onLost);
    if (sender.sendable()) done();
  });
}

/** One receiver on a group's queue, attached again on every new connection. */
class ArtemisConsumer implements Consumption {
  readonly queue: string;
  /** Deliveries handed out on the current connection and not settled yet. */
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

  /**
   * Opens the receiver on `link` with the full credit. The first attach (from `consume`) rejects
   * on failure; a re-attach after a reconnect retries every second while `link` stays current.
   */
  async attach(link: LiveConnection, first = false): Promise<void> {
    if (this.#closed || this.#stopped) return;
    let receiver: Receiver;
    try {
      receiver = await link.connection.createReceiver({
        name: `omniqueue-${randomUUID()}`,
        source: { address: this.queue },
        credit_window: 0,
        autoaccept: false,
        abortSignal: link.lost.signal,
      });
    } catch (error) {
      if (first) throw new ConnectionError(`Artemis: could not attach a receiver to '${this.queue}': ${(error as Error).message}`, { cause: error });
      if (this.adapter.isCurrent(link) && !this.#closed) setTimeout(() => void this.attach(link), 1_000);
      return;
    }
    if (!this.adapter.isCurrent(link) || this.#closed || this.#stopped) {
      // A lost connection: the reconnect attaches this consumer again.
      await within(receiver.close(), 5_000);
      return;
    }
    receiver.on(ReceiverEvents.message, (context: EventContext) => this.#receive(context, link.epoch));
    this.#receiver = receiver;
    this.unsettled.clear();
    receiver.addCredit(this.prefetch);
  }

  /** The connection was lost: its deliveries are back in the queue, their settlement will be a no-op. */
  detached(): void {
    this.#receiver = undefined;
    this.unsettled.clear();
  }

  #receive(context: EventContext, epoch: number): void {
    const delivery = context.delivery;
    const message = context.message;
    if (!delivery || !message) return;
    if (this.#stopped) {
      delivery.release({ delivery_failed: false });
      return;
    }
    const handed = new ArtemisDelivery(this.adapter, this, message, delivery, epoch);
    this.unsettled.add(handed);
    this.listener(handed);
  }

  /** A delivery was settled: one more credit, unless stopped. */
  settled(delivery: ArtemisDelivery): void {
    if (!this.unsettled.delete(delivery)) return;
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
    if (this.#receiver) await within(this.#receiver.close(), 5_000);
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

/** Waits for `task` at most `ms`, ignoring its failure (closing links of a connection that may be gone). */
async function within(task: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([task.catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
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
