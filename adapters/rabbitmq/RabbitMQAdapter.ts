import { createHash } from 'node:crypto';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, MessageProperties, Options } from 'amqplib';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, Delivery, DeliveryListener, EnsureRequest, TopologyChange, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, OmniQueueError, PayloadTooLargeError, PublishError, TooManyHeadersError } from '../../runtime/errors.js';
import { stderrLogger, type Logger } from '../../runtime/Logger.js';
import { WireHeader } from '../../runtime/wire.js';
import { DELAY_BUCKETS_MS, delayBucket } from './delayBucket.js';

/** Exchange types the adapter can declare for a topic. */
export const RabbitExchangeType = {
  Topic: 'topic',
  Fanout: 'fanout',
} as const;

/** Union of {@link RabbitExchangeType} values. */
export type RabbitExchangeType = (typeof RabbitExchangeType)[keyof typeof RabbitExchangeType];

/** Queue types the adapter can declare for a group. */
export const RabbitQueueType = {
  Classic: 'classic',
  Quorum: 'quorum',
} as const;

/** Union of {@link RabbitQueueType} values. */
export type RabbitQueueType = (typeof RabbitQueueType)[keyof typeof RabbitQueueType];

/** Settings of the RabbitMQ adapter. */
export interface RabbitMQAdapterOptions {
  /** AMQP URL. Default: `AMQP_URL`, else `amqp://guest:guest@127.0.0.1:5672`. */
  readonly url?: string;
  /** Exchange type of topics the adapter creates. Default `topic` (groups bind with `#`). */
  readonly exchangeType?: RabbitExchangeType;
  /** Queue type of groups the adapter creates. Default `classic`; `quorum` adds the broker's delivery count. */
  readonly queueType?: RabbitQueueType;
  /** Reconnect backoff after a connection or channel loss. Default 100 ms doubling to 5 s, ±20 % jitter. */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * How long a publish made while disconnected waits for the connection to come back (and is
   * re-sent after a connection loss that left it unconfirmed) before it rejects with a
   * `ConnectionError`. Default 30 s.
   */
  readonly publishTimeoutMs?: number;
  /** AMQP heartbeat in seconds. Default 10. */
  readonly heartbeatSeconds?: number;
  /** Largest payload accepted (RabbitMQ's `max_message_size`). Default 128 MiB. */
  readonly maxPayloadBytes?: number;
  /** Name shown in the management UI. Default `omniqueue`. */
  readonly connectionName?: string;
  /** Where connection events are logged. Default: warnings and errors to stderr. */
  readonly logger?: Logger;
}

/**
 * Per-topic / per-group creation options (`createOptions` of `ensure`, `publish` and `subscribe`).
 */
export interface RabbitCreateOptions {
  /** Exchange type for the topic. */
  readonly exchangeType?: RabbitExchangeType;
  /** Queue type for the group. */
  readonly queueType?: RabbitQueueType;
  /** Extra `x-` arguments for the group queue (`x-max-length`, `x-queue-mode` …). */
  readonly queueArguments?: Readonly<Record<string, unknown>>;
  /** Binding pattern of the group queue on a topic exchange. Default `#` (everything). */
  readonly bindingKey?: string;
}

/**
 * What the RabbitMQ adapter does:
 * - a topic is a durable exchange (topic type by default), a group a durable queue
 *   `<topic>.<group>` bound to it; messages are persistent;
 * - `nack(delay)` re-publishes the message, with `omniqueue-attempt` + 1, into a retry queue
 *   `<topic>.<group>:retry:<bucket ms>` whose queue-level TTL dead-letters it back into the group
 *   queue (no plugin; delays are rounded up by at most 25 %, see `delayBucket`); delayed publishes
 *   go the same way through `<topic>:delay:<bucket ms>` back to the exchange;
 * - `attempt` comes from the `omniqueue-attempt` header, plus the broker's own count of in-place
 *   redeliveries (`x-delivery-count` on quorum queues, the `redelivered` flag on classic queues);
 * - dead letters go through the runtime's dead-letter topic (`<topic>.<group>.dlq`).
 */
export const RABBITMQ_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: true,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'native',
  attempts: 'header',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: 128 * 1024 * 1024,
});

/** Header carrying the key when the routing key cannot (retries, delays, keys over 255 bytes). */
export const KEY_HEADER = 'omniqueue-key';

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
const MAX_ROUTING_KEY_BYTES = 255;
const MAX_PLAIN_QUEUE_NAME = 200;

/** The durable queue of a group: `<topic>.<group>`, shortened with a hash when too long for AMQP. */
export function groupQueueName(topic: string, group: string): string {
  const name = `${topic}.${group}`;
  if (name.length <= MAX_PLAIN_QUEUE_NAME) return name;
  return `${name.slice(0, 180)}~${createHash('sha1').update(name).digest('hex').slice(0, 16)}`;
}

/** The retry queue of a group queue for one delay bucket (`long` for per-message TTLs). */
export function retryQueueName(groupQueue: string, bucket: number | 'long'): string {
  return `${groupQueue}:retry:${bucket}`;
}

/** The delay queue of a topic for one delay bucket (`long` for per-message TTLs). */
export function delayQueueName(topic: string, bucket: number | 'long'): string {
  return `${topic}:delay:${bucket}`;
}

interface ChannelSlot<C extends Channel> {
  readonly channel: C;
  open: boolean;
}

/**
 * RabbitMQ adapter on amqplib: confirm channel for publishes, one channel per consumer with
 * `prefetch` = the subscription's concurrency, reconnect with backoff that resumes every consumer.
 * Translation only: retries, dead letters and concurrency stay in the runtime.
 */
export class RabbitMQAdapter implements Adapter {
  readonly name = 'rabbitmq';
  readonly features: AdapterFeatures;
  readonly #url: string;
  readonly #exchangeType: RabbitExchangeType;
  readonly #queueType: RabbitQueueType;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #publishTimeoutMs: number;
  readonly #maxPayloadBytes: number;
  readonly #connectionName: string;
  readonly #logger: Logger;
  readonly #consumers = new Set<RabbitConsumption>();
  readonly #declared = new Map<string, Promise<void>>();
  /** Declarations (entries of `#declared`) that have completed. */
  readonly #confirmed = new WeakSet<Promise<void>>();
  readonly #waiters = new Set<() => void>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #connection: ChannelModel | undefined;
  #publisher: ChannelSlot<ConfirmChannel> | undefined;
  #reconnecting = false;
  #reconnectTimer: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: RabbitMQAdapterOptions = {}) {
    this.#url = withHeartbeat(options.url ?? process.env.AMQP_URL ?? DEFAULT_URL, options.heartbeatSeconds ?? 10);
    this.#exchangeType = options.exchangeType ?? RabbitExchangeType.Topic;
    this.#queueType = options.queueType ?? RabbitQueueType.Classic;
    this.#initialDelayMs = options.reconnect?.initialDelayMs ?? 100;
    this.#maxDelayMs = options.reconnect?.maxDelayMs ?? 5_000;
    this.#publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
    this.#maxPayloadBytes = options.maxPayloadBytes ?? RABBITMQ_FEATURES.maxPayloadBytes!;
    this.#connectionName = options.connectionName ?? 'omniqueue';
    this.#logger = options.logger ?? stderrLogger;
    this.features = Object.freeze({ ...RABBITMQ_FEATURES, maxPayloadBytes: this.#maxPayloadBytes });
  }

  /** True while a connection and its publish channel are open. */
  get connected(): boolean {
    return this.#publisher?.open === true;
  }

  async connect(): Promise<void> {
    if (this.#closing) throw new ClosedError('The rabbitmq adapter');
    if (this.#connection) return;
    try {
      await this.#open();
    } catch (error) {
      throw new ConnectionError(`Cannot connect to RabbitMQ: ${(error as Error).message}`, { cause: error });
    }
  }

  async ensure(request: EnsureRequest): Promise<void> {
    const options = parseCreateOptions(request.createOptions);
    await this.#declare(`exchange\u0000${request.topic}`, (channel) =>
      channel.assertExchange(request.topic, options.exchangeType ?? this.#exchangeType, { durable: true }).then(() => undefined),
    );
    if (request.group === undefined) return;
    const queue = groupQueueName(request.topic, request.group);
    const queueType = options.queueType ?? this.#queueType;
    const args: Record<string, unknown> = { ...options.queueArguments };
    if (queueType === RabbitQueueType.Quorum) args['x-queue-type'] = 'quorum';
    await this.#declare(`queue\u0000${queue}`, async (channel) => {
      await channel.assertQueue(queue, { durable: true, arguments: args });
      await channel.bindQueue(queue, request.topic, options.bindingKey ?? '#');
    });
  }

  /**
   * What {@link RabbitMQAdapter.ensure} would change: whether the exchange and the group queue exist
   * (passive declarations on throwaway channels). AMQP cannot read a binding back, so an existing
   * queue is reported unchanged and `ensure` re-asserts its binding anyway.
   */
  async plan(request: EnsureRequest): Promise<TopologyChange[]> {
    const exists = (check: (channel: Channel) => Promise<unknown>): Promise<boolean> =>
      this.#withChannel(check).then(
        () => true,
        () => false,
      );
    const changes: TopologyChange[] = [{ action: (await exists((channel) => channel.checkExchange(request.topic))) ? 'unchanged' : 'create', resource: `exchange ${request.topic}` }];
    if (request.group !== undefined) {
      const queue = groupQueueName(request.topic, request.group);
      const found = await exists((channel) => channel.checkQueue(queue));
      changes.push({ action: found ? 'unchanged' : 'create', resource: `queue ${queue} bound to ${request.topic}` });
    }
    return changes;
  }

  async send(message: WireMessage): Promise<void> {
    if (this.#closing) throw new ClosedError('The rabbitmq adapter');
    const payload = message.payload;
    if (payload.byteLength > this.#maxPayloadBytes) throw new PayloadTooLargeError(payload.byteLength, this.#maxPayloadBytes, 'RabbitMQ');
    const content = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const { [WireHeader.ContentType]: contentType, ...rest } = message.headers;
    const headers: Record<string, string> = rest;
    const key = message.key;
    const keyFits = key !== undefined && Buffer.byteLength(key) <= MAX_ROUTING_KEY_BYTES;
    if (key !== undefined) headers[KEY_HEADER] = key;
    const properties: Options.Publish = {
      persistent: true,
      messageId: message.id,
      contentType,
      timestamp: Math.floor(message.publishedAt / 1000),
      headers,
    };
    const routingKey = keyFits ? key : '';
    const known = message.delayMs > 0 ? undefined : this.#declared.get(`exchange\u0000${message.topic}`);
    const task =
      known !== undefined && this.#confirmed.has(known)
        ? // The exchange is known to exist: straight to the confirm channel, no extra turn.
          this.publishRaw(message.topic, routingKey, content, properties)
        : (async () => {
            if (message.delayMs > 0) {
              const bucket = delayBucket(message.delayMs);
              if (bucket === undefined) properties.expiration = String(Math.ceil(message.delayMs));
              const queue = await this.#delayQueue(message.topic, bucket ?? 'long');
              await this.publishRaw('', queue, content, properties);
            } else {
              await this.#exchangeExists(message.topic);
              await this.publishRaw(message.topic, routingKey, content, properties);
            }
          })();
    this.#inFlight.add(task);
    try {
      await task;
    } finally {
      this.#inFlight.delete(task);
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closing) throw new ClosedError('The rabbitmq adapter');
    if (request.ensure) await this.ensure(request);
    const consumption = new RabbitConsumption(this, request, onDelivery, this.#logger);
    const connection = this.#connection;
    if (!connection) throw new ConnectionError('RabbitMQ is not connected; the consumer cannot start.');
    try {
      await consumption.attach(connection);
    } catch (error) {
      await consumption.close().catch(() => undefined);
      throw translateChannelError(error, `Cannot consume ${groupQueueName(request.topic, request.group)}`);
    }
    this.#consumers.add(consumption);
    return consumption;
  }

  async close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
      await Promise.allSettled([...this.#inFlight]);
      if (this.#reconnectTimer) {
        clearTimeout(this.#reconnectTimer.timer);
        this.#reconnectTimer.wake();
      }
      for (const wake of [...this.#waiters]) wake();
      const connection = this.#connection;
      this.#connection = undefined;
      this.#publisher = undefined;
      await connection?.close().catch(() => undefined);
    })();
    return this.#closed;
  }

  /**
   * Deletes what the adapter created for a topic and its groups: group queues with all their retry
   * queues, the topic's delay queues and the exchange. For tests and tear-down scripts.
   */
  async deleteTopology(topic: string, groups: readonly string[]): Promise<void> {
    const buckets: (number | 'long')[] = [...DELAY_BUCKETS_MS, 'long'];
    await this.#withChannel(async (channel) => {
      for (const group of groups) {
        const queue = groupQueueName(topic, group);
        for (const bucket of buckets) await channel.deleteQueue(retryQueueName(queue, bucket));
        await channel.deleteQueue(queue);
        this.#declared.delete(`queue\u0000${queue}`);
      }
      for (const bucket of buckets) await channel.deleteQueue(delayQueueName(topic, bucket));
      await channel.deleteExchange(topic);
      this.#declared.delete(`exchange\u0000${topic}`);
    });
    for (const key of [...this.#declared.keys()]) if (key.startsWith(`queue\u0000${topic}`)) this.#declared.delete(key);
  }

  /**
   * Publishes through the confirm channel and resolves on the broker's confirm. While disconnected
   * it waits for the connection (bounded by `publishTimeoutMs`); a publish left unconfirmed by a
   * connection loss is sent again after reconnecting (at-least-once). A broker nack rejects.
   * @internal
   */
  async publishRaw(exchange: string, routingKey: string, content: Buffer, properties: Options.Publish): Promise<void> {
    const deadline = Date.now() + this.#publishTimeoutMs;
    for (;;) {
      const slot = this.#publisher?.open ? this.#publisher : await this.#waitForPublisher(deadline);
      try {
        await new Promise<void>((resolve, reject) => {
          slot.channel.publish(exchange, routingKey, content, properties, (error: unknown) => (error ? reject(error) : resolve()));
        });
        return;
      } catch (error) {
        if (error instanceof RangeError) throw new TooManyHeadersError(`RabbitMQ cannot encode these headers: ${error.message}`, { cause: error });
        if (error instanceof Error && error.message === 'message nacked') {
          throw new PublishError(`RabbitMQ refused the message (basic.nack) on exchange '${exchange}'.`, { cause: error });
        }
        if (this.#closing && !this.#publisher?.open) throw new ClosedError('The rabbitmq adapter', { cause: error });
        if (Date.now() >= deadline) {
          throw new ConnectionError(`RabbitMQ connection lost; the publish was not confirmed within ${this.#publishTimeoutMs} ms.`, { cause: error });
        }
        if (slot.open) {
          // The channel is still open, so this was not a connection loss: give up.
          throw new PublishError(`RabbitMQ publish failed: ${(error as Error).message}`, { cause: error });
        }
        // Connection or channel lost with the message unconfirmed: send it again once reconnected.
      }
    }
  }

  /** Declares the retry queue of a group queue for a delay; returns its name. @internal */
  async retryQueue(groupQueue: string, delayMs: number): Promise<{ queue: string; expiration: string | undefined }> {
    const bucket = delayBucket(delayMs);
    const queue = retryQueueName(groupQueue, bucket ?? 'long');
    const args: Record<string, unknown> = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': groupQueue };
    if (bucket !== undefined) args['x-message-ttl'] = bucket;
    await this.#declare(`queue\u0000${queue}`, (channel) => channel.assertQueue(queue, { durable: true, arguments: args }).then(() => undefined));
    return { queue, expiration: bucket === undefined ? String(Math.ceil(delayMs)) : undefined };
  }

  /** A consumer whose channel died while the connection lives on: reopen it after a pause. @internal */
  reattachLater(consumer: RabbitConsumption): void {
    if (this.#closing) return;
    const timer = setTimeout(() => {
      const connection = this.#connection;
      if (!connection || this.#closing || !this.#consumers.has(consumer)) return;
      consumer.attach(connection).catch((error: unknown) => {
        this.#logger.warn({ adapter: 'rabbitmq', err: String(error) }, 'consumer re-attach failed; retrying');
        this.reattachLater(consumer);
      });
    }, this.#initialDelayMs * 5);
    timer.unref();
  }

  /** Forgets a closed consumer. @internal */
  forget(consumer: RabbitConsumption): void {
    this.#consumers.delete(consumer);
  }

  async #delayQueue(topic: string, bucket: number | 'long'): Promise<string> {
    await this.#exchangeExists(topic);
    const queue = delayQueueName(topic, bucket);
    const args: Record<string, unknown> = { 'x-dead-letter-exchange': topic, 'x-dead-letter-routing-key': '' };
    if (bucket !== 'long') args['x-message-ttl'] = bucket;
    await this.#declare(`queue\u0000${queue}`, (channel) => channel.assertQueue(queue, { durable: true, arguments: args }).then(() => undefined));
    return queue;
  }

  /** Publishing to a missing exchange would close the publish channel: make sure it exists first. */
  #exchangeExists(topic: string): Promise<void> {
    const cacheKey = `exchange\u0000${topic}`;
    const known = this.#declared.get(cacheKey);
    if (known) return known;
    return this.#declare(cacheKey, async (channel) => {
      try {
        await channel.checkExchange(topic);
      } catch {
        await this.#withChannel((fresh) => fresh.assertExchange(topic, this.#exchangeType, { durable: true }).then(() => undefined));
      }
    });
  }

  /** Runs a declaration once per adapter (until it fails), on a short-lived channel. */
  #declare(cacheKey: string, work: (channel: Channel) => Promise<void>): Promise<void> {
    let pending = this.#declared.get(cacheKey);
    if (!pending) {
      const declared: Promise<void> = this.#withChannel(work).then(
        () => void this.#confirmed.add(declared),
        (error: unknown) => {
          this.#declared.delete(cacheKey);
          throw translateChannelError(error, 'RabbitMQ refused the declaration');
        },
      );
      pending = declared;
      this.#declared.set(cacheKey, pending);
    }
    return pending;
  }

  /** Opens a channel for administrative work; a channel error only kills this channel. */
  async #withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#publishTimeoutMs;
    if (!this.#connection) await this.#waitForPublisher(deadline);
    const connection = this.#connection;
    if (!connection) throw new ConnectionError('RabbitMQ is not connected.');
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async #waitForPublisher(deadline: number): Promise<ChannelSlot<ConfirmChannel>> {
    for (;;) {
      if (this.#closing && !this.#publisher?.open) throw new ClosedError('The rabbitmq adapter');
      if (this.#publisher?.open) return this.#publisher;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new ConnectionError(`RabbitMQ is unreachable; gave up after waiting ${this.#publishTimeoutMs} ms for the connection.`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, remaining);
        this.#waiters.add(wake);
      });
    }
  }

  async #open(): Promise<void> {
    const connection = await amqp.connect(this.#url, { clientProperties: { connection_name: this.#connectionName } });
    connection.on('error', (error: Error) => this.#logger.warn({ adapter: 'rabbitmq', err: error.message }, 'connection error'));
    connection.on('close', () => this.#connectionLost(connection));
    connection.on('blocked', (reason: string) => this.#logger.warn({ adapter: 'rabbitmq', reason }, 'connection blocked by the broker'));
    if (this.#closing) {
      await connection.close().catch(() => undefined);
      return;
    }
    this.#connection = connection;
    await this.#openPublisher(connection);
    for (const consumer of this.#consumers) {
      consumer.attach(connection).catch((error: unknown) => {
        this.#logger.warn({ adapter: 'rabbitmq', err: String(error) }, 'consumer resume failed; retrying');
        this.reattachLater(consumer);
      });
    }
  }

  async #openPublisher(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    const slot: ChannelSlot<ConfirmChannel> = { channel, open: true };
    channel.on('error', (error: Error) => this.#logger.warn({ adapter: 'rabbitmq', err: error.message }, 'publish channel error'));
    channel.on('close', () => {
      slot.open = false;
      if (this.#publisher === slot) this.#publisher = undefined;
      if (!this.#closing && this.#connection === connection) {
        this.#openPublisher(connection).catch(() => undefined);
      }
    });
    if (this.#connection !== connection) {
      await channel.close().catch(() => undefined);
      return;
    }
    this.#publisher = slot;
    for (const wake of [...this.#waiters]) wake();
  }

  #connectionLost(connection: ChannelModel): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    if (this.#publisher) this.#publisher.open = false;
    this.#publisher = undefined;
    if (this.#closing) return;
    this.#logger.warn({ adapter: 'rabbitmq' }, 'connection lost; reconnecting');
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    let delay = this.#initialDelayMs;
    try {
      while (!this.#closing && !this.#connection) {
        const wait = delay * (0.8 + Math.random() * 0.4);
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            this.#reconnectTimer = undefined;
            resolve();
          };
          this.#reconnectTimer = { timer: setTimeout(wake, wait), wake };
        });
        if (this.#closing) return;
        try {
          await this.#open();
          this.#logger.info({ adapter: 'rabbitmq' }, 'reconnected');
        } catch (error) {
          this.#logger.debug({ adapter: 'rabbitmq', err: (error as Error).message, nextDelayMs: delay }, 'reconnect failed');
          delay = Math.min(this.#maxDelayMs, delay * 2);
        }
      }
    } finally {
      this.#reconnecting = false;
    }
  }
}

/** One consumer of a group queue, on its own channel, resumed after every reconnect. */
class RabbitConsumption implements Consumption {
  readonly queue: string;
  readonly groupQueue: string;
  readonly topic: string;
  #slot: ChannelSlot<Channel> | undefined;
  #consumerTag: string | undefined;
  #stopped = false;
  #closed = false;
  #attaching: Promise<void> | undefined;

  constructor(
    readonly adapter: RabbitMQAdapter,
    private readonly request: ConsumeRequest,
    private readonly listener: DeliveryListener,
    private readonly logger: Logger,
  ) {
    this.topic = request.topic;
    this.queue = groupQueueName(request.topic, request.group);
    this.groupQueue = this.queue;
  }

  /** Opens a channel on `connection`, sets the prefetch and starts consuming. */
  attach(connection: ChannelModel): Promise<void> {
    const run = this.#attach(connection);
    this.#attaching = run.finally(() => {
      if (this.#attaching === run) this.#attaching = undefined;
    });
    return run;
  }

  async #attach(connection: ChannelModel): Promise<void> {
    if (this.#stopped) return;
    if (this.#slot?.open) return;
    const channel = await connection.createChannel();
    const slot: ChannelSlot<Channel> = { channel, open: true };
    channel.on('error', (error: Error) => this.logger.warn({ adapter: 'rabbitmq', queue: this.queue, err: error.message }, 'consumer channel error'));
    channel.on('close', () => {
      slot.open = false;
      if (this.#slot !== slot) return;
      this.#slot = undefined;
      this.#consumerTag = undefined;
      // A channel closed while the connection lives (channel error): reopen it. A lost connection
      // is handled by the adapter's reconnect, which re-attaches every consumer.
      if (!this.#stopped && this.adapter.connected) this.adapter.reattachLater(this);
    });
    this.#slot = slot;
    await channel.prefetch(this.request.prefetch, false);
    const { consumerTag } = await channel.consume(this.queue, (message) => this.#onMessage(slot, message), { noAck: false });
    this.#consumerTag = consumerTag;
    if (this.#stopped) await channel.cancel(consumerTag).catch(() => undefined);
  }

  #onMessage(slot: ChannelSlot<Channel>, message: ConsumeMessage | null): void {
    if (message === null) {
      // Cancelled by the broker (queue deleted …): reopen later unless stopped.
      this.logger.warn({ adapter: 'rabbitmq', queue: this.queue }, 'consumer cancelled by the broker');
      if (!this.#stopped && this.#slot === slot) {
        this.#slot = undefined;
        void slot.channel.close().catch(() => undefined);
      }
      return;
    }
    this.listener(new RabbitDelivery(this, slot, message));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#attaching?.catch(() => undefined);
    const slot = this.#slot;
    const tag = this.#consumerTag;
    this.#consumerTag = undefined;
    if (slot?.open && tag !== undefined) await slot.channel.cancel(tag).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.#closed) return;
    this.#closed = true;
    const slot = this.#slot;
    this.#slot = undefined;
    // Closing the channel hands every unacknowledged message back to the queue.
    if (slot?.open) await slot.channel.close().catch(() => undefined);
    this.adapter.forget(this);
  }
}

const DEATH_HEADER = /^x-(?:death|first-death-|last-death-)/;

/** One AMQP delivery as the runtime sees it. */
class RabbitDelivery implements Delivery {
  readonly payload: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string | undefined;
  readonly timestamp: number | undefined;
  readonly #headerAttempt: number;

  constructor(
    private readonly consumption: RabbitConsumption,
    private readonly slot: ChannelSlot<Channel>,
    readonly raw: ConsumeMessage,
  ) {
    const { properties, fields } = raw;
    this.payload = raw.content;
    const headers: Record<string, string> = {};
    let key: string | undefined;
    let deliveryCount: number | undefined;
    const native = properties.headers;
    if (native) {
      for (const name of Object.keys(native)) {
        const value: unknown = native[name];
        if (value === undefined || value === null) continue;
        if (name === KEY_HEADER) key = headerText(value);
        else if (name === 'x-delivery-count') deliveryCount = Number(value);
        else if (!DEATH_HEADER.test(name)) headers[name] = headerText(value);
      }
    }
    if (typeof properties.contentType === 'string') headers[WireHeader.ContentType] = properties.contentType;
    if (key === undefined && fields.exchange === consumption.topic && fields.routingKey !== '') key = fields.routingKey;
    this.headers = headers;
    this.key = key;
    const fromHeader = Number.parseInt(headers[WireHeader.Attempt] ?? '1', 10);
    this.#headerAttempt = Number.isFinite(fromHeader) && fromHeader >= 1 ? fromHeader : 1;
    const inPlace = deliveryCount !== undefined && Number.isFinite(deliveryCount) ? deliveryCount : fields.redelivered ? 1 : 0;
    this.attempt = this.#headerAttempt + inPlace;
    this.nativeId = typeof properties.messageId === 'string' ? properties.messageId : undefined;
    const ts = typeof properties.timestamp === 'number' ? properties.timestamp : undefined;
    this.timestamp = ts === undefined ? undefined : ts < 100_000_000_000 ? ts * 1000 : ts;
  }

  async ack(): Promise<void> {
    this.#assertOpen('ack');
    this.slot.channel.ack(this.raw);
  }

  async nack(delayMs: number): Promise<void> {
    this.#assertOpen('nack');
    const adapter = this.consumption.adapter;
    const headers: Record<string, unknown> = {};
    const native = this.raw.properties.headers ?? {};
    for (const name of Object.keys(native)) {
      if (!DEATH_HEADER.test(name) && name !== 'x-delivery-count') headers[name] = native[name];
    }
    headers[WireHeader.Attempt] = String(this.attempt + 1);
    if (this.key !== undefined) headers[KEY_HEADER] = this.key;
    const properties = republishProperties(this.raw.properties, headers);
    try {
      if (delayMs <= 0) {
        await adapter.publishRaw('', this.consumption.groupQueue, this.raw.content, properties);
      } else {
        const { queue, expiration } = await adapter.retryQueue(this.consumption.groupQueue, delayMs);
        if (expiration !== undefined) properties.expiration = expiration;
        await adapter.publishRaw('', queue, this.raw.content, properties);
      }
    } catch (error) {
      if (this.slot.open) this.slot.channel.nack(this.raw, false, true);
      throw error;
    }
    // The copy is stored; if the channel died meanwhile the broker redelivers the original too
    // (at-least-once, never lost).
    if (this.slot.open) this.slot.channel.ack(this.raw);
  }

  #assertOpen(operation: string): void {
    if (!this.slot.open) {
      throw new ConnectionError(`RabbitMQ channel closed before ${operation}; the broker redelivers the message.`);
    }
  }
}

function republishProperties(properties: MessageProperties, headers: Record<string, unknown>): Options.Publish {
  const result: Options.Publish = { persistent: true, headers };
  if (properties.contentType !== undefined) result.contentType = properties.contentType;
  if (properties.contentEncoding !== undefined) result.contentEncoding = properties.contentEncoding;
  if (properties.messageId !== undefined) result.messageId = properties.messageId;
  if (properties.timestamp !== undefined) result.timestamp = properties.timestamp;
  if (properties.correlationId !== undefined) result.correlationId = properties.correlationId;
  if (properties.replyTo !== undefined) result.replyTo = properties.replyTo;
  if (properties.type !== undefined) result.type = properties.type;
  if (properties.appId !== undefined) result.appId = properties.appId;
  if (properties.priority !== undefined) result.priority = properties.priority;
  return result;
}

function headerText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

function withHeartbeat(url: string, seconds: number): string {
  try {
    const parsed = new URL(url);
    if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(seconds));
    return parsed.toString();
  } catch {
    return url;
  }
}

function parseCreateOptions(raw: Readonly<Record<string, unknown>> | undefined): RabbitCreateOptions {
  if (!raw) return {};
  const { exchangeType, queueType, queueArguments, bindingKey } = raw;
  if (exchangeType !== undefined && exchangeType !== 'topic' && exchangeType !== 'fanout') {
    throw new ConfigError(`createOptions.exchangeType must be 'topic' or 'fanout', got ${String(exchangeType)}.`);
  }
  if (queueType !== undefined && queueType !== 'classic' && queueType !== 'quorum') {
    throw new ConfigError(`createOptions.queueType must be 'classic' or 'quorum', got ${String(queueType)}.`);
  }
  if (queueArguments !== undefined && (typeof queueArguments !== 'object' || queueArguments === null)) {
    throw new ConfigError('createOptions.queueArguments must be an object.');
  }
  if (bindingKey !== undefined && typeof bindingKey !== 'string') throw new ConfigError('createOptions.bindingKey must be a string.');
  return {
    exchangeType: exchangeType as RabbitExchangeType | undefined,
    queueType: queueType as RabbitQueueType | undefined,
    queueArguments: queueArguments as Record<string, unknown> | undefined,
    bindingKey: bindingKey as string | undefined,
  };
}

function translateChannelError(error: unknown, context: string): OmniQueueError {
  if (error instanceof OmniQueueError) return error;
  const code = (error as { code?: unknown }).code;
  const message = `${context}: ${(error as Error).message ?? String(error)}`;
  if (code === 404 || code === 406 || code === 403) return new ConfigError(message, { cause: error });
  return new ConnectionError(message, { cause: error });
}
