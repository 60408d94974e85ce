import { randomUUID } from 'node:crypto';
import type { CreateSubscriptionOptions, CreateTopicOptions } from '@azure/service-bus';
import { DEAD_LETTER_GROUP, deadLetterTopicOf } from '../../runtime/Broker.js';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, DeadLetterRecord, Delivery, DeliveryListener, EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, PayloadTooLargeError, PublishError, UnsupportedFeatureError } from '../../runtime/errors.js';
import { stderrLogger, type Logger } from '../../runtime/Logger.js';
import { DEFAULT_RETRY_POLICY } from '../../runtime/pipeline/retry.js';
import { WireHeader } from '../../runtime/wire.js';
import type {
  ApplicationPropertyValue,
  ServiceBusAdministrationLike,
  ServiceBusClientLike,
  ServiceBusMessage,
  ServiceBusReceivedMessage,
  ServiceBusReceiverLike,
  ServiceBusSenderLike,
} from './clients.js';
import { asBuffer, attemptOf, bodyBytes, headersOf, KeyProperty, RETRY_RULE_NAME, retryFilterExpression, ServiceBusProperty, toServiceBusMessage } from './codec.js';
import { subscriptionEntity, topicEntity } from './names.js';

/** Largest message a Standard-tier namespace accepts (Premium: set {@link ServiceBusAdapterOptions.maxMessageBytes}). */
export const STANDARD_MAX_MESSAGE_BYTES = 256 * 1024;
/** Default of {@link ServiceBusAdapterOptions.maxAutoLockRenewalDurationInMs}: 5 minutes, as the Functions host. */
export const DEFAULT_LOCK_RENEWAL_MS = 5 * 60 * 1000;

/** Settings of the Service Bus adapter. */
export interface ServiceBusAdapterOptions {
  /** Namespace connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`). Never logged. */
  readonly connectionString?: string;
  /** A ready client (a `ServiceBusClient`, e.g. built with a `TokenCredential`, or a test double). The caller closes it. */
  readonly client?: ServiceBusClientLike;
  /** A ready administration client for `ensure`. Default: built from {@link connectionString}. */
  readonly admin?: ServiceBusAdministrationLike;
  /** Native field of the key: `partitionKey` (default) or `sessionId`. Per topic: `createOptions.key`. */
  readonly key?: KeyProperty;
  /**
   * How long the receiver keeps renewing the lock of a message whose handler is still running.
   * Default 5 min; 0 turns renewal off (the lock then lasts the subscription's `lockDuration`).
   */
  readonly maxAutoLockRenewalDurationInMs?: number;
  /** Largest payload accepted before sending. Default 256 KiB (Standard tier); Premium allows up to 100 MB. */
  readonly maxMessageBytes?: number;
  /** Where receive errors (the SDK reconnects by itself) are reported. Default: stderr. */
  readonly logger?: Logger;
}

/**
 * Broker-specific creation options (`createOptions` of `publish`/`subscribe`), passed through to the
 * administration client.
 */
export interface ServiceBusCreateOptions {
  /** Extra `createTopic` options (`defaultMessageTimeToLive`, `enablePartitioning`, `requiresDuplicateDetection` …). */
  readonly topic?: CreateTopicOptions;
  /** Extra `createSubscription` options (`lockDuration`, `requiresSession` …); they win over the adapter's. */
  readonly subscription?: CreateSubscriptionOptions;
  /** Native field of this topic's key (remembered from `ensure`). */
  readonly key?: KeyProperty;
}

/**
 * What Service Bus can do through this adapter.
 *
 * - `delay: 'emulated'`: `nack(delayMs > 0)` is a **scheduled re-send plus complete**: the message
 *   (body, properties, key) is scheduled on the topic for `now + delayMs` with the next attempt in
 *   `omniqueue-attempt` and `omniqueue-retry-topic`/`-group` properties, and the original is
 *   completed. Every subscription the adapter creates has a rule (`omniqueue`) that lets such a
 *   re-send through only to the group it is for; a subscription created elsewhere needs the same
 *   rule (see {@link retryFilterExpression}). `nack(0)` is a plain `abandonMessage`
 *   (`deliveryCount` + 1). Delayed publishes use `scheduleMessages` (native).
 * - `attempts: 'broker'`: `deliveryCount`, plus the carried attempt after a scheduled re-send.
 * - `nativeDeadLetter`: `deadLetterMessage` with the reason and error description; subscriptions
 *   created by `ensure` forward their dead-letter sub-queue to the group's dead-letter topic
 *   (`<topic>.<group>.dlq`), where the `dlq` group reads it like on every other adapter.
 * - `orderingPerKey: false`: without sessions Service Bus does not order per key.
 */
export const SERVICEBUS_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: true,
  retainsWhileOffline: true,
  orderingPerKey: false,
  delay: 'emulated',
  delayedPublish: true,
  attempts: 'broker',
  nativeDeadLetter: true,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: STANDARD_MAX_MESSAGE_BYTES,
});

/** Longest dead-letter error description sent (the runtime already cuts the error header at 1 KiB). */
const MAX_DESCRIPTION = 1024;

/**
 * The Azure Service Bus adapter (`@azure/service-bus`, loaded on `connect` unless a client is
 * given). Topic = Service Bus topic; group = subscription on it, created by `ensure` with
 * `maxDeliveryCount = retry.maxAttempts + 1` (so the runtime, not the broker, decides when to give
 * up; the broker only catches crash loops), `deadLetteringOnMessageExpiration` on, the retry rule,
 * and dead letters forwarded to the group's dead-letter topic. Receivers use peek-lock with
 * `maxConcurrentCalls = prefetch`, no auto-complete and automatic lock renewal.
 */
export class ServiceBusAdapter implements Adapter {
  readonly name = 'servicebus';
  readonly features: AdapterFeatures;
  readonly #options: ServiceBusAdapterOptions;
  readonly #logger: Logger;
  readonly #senders = new Map<string, ServiceBusSenderLike>();
  readonly #keys = new Map<string, KeyProperty>();
  readonly #ensured = new Map<string, Promise<void>>();
  readonly #consumers = new Set<ServiceBusConsumer>();
  readonly #pending = new Set<Promise<unknown>>();
  #client: ServiceBusClientLike | undefined;
  #admin: ServiceBusAdministrationLike | undefined;
  #ownsClient = false;
  #connecting: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: ServiceBusAdapterOptions = {}) {
    this.#options = options;
    this.#logger = options.logger ?? stderrLogger;
    const maxMessageBytes = options.maxMessageBytes ?? STANDARD_MAX_MESSAGE_BYTES;
    this.features = maxMessageBytes === STANDARD_MAX_MESSAGE_BYTES ? SERVICEBUS_FEATURES : Object.freeze({ ...SERVICEBUS_FEATURES, maxPayloadBytes: maxMessageBytes });
    this.#client = options.client;
    this.#admin = options.admin;
  }

  connect(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The servicebus adapter'));
    this.#connecting ??= this.#connect();
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    if (this.#client && this.#admin) return;
    const connectionString = this.#options.connectionString;
    if (!connectionString) {
      throw new ConfigError(
        this.#client
          ? 'The servicebus adapter needs `admin` (a ServiceBusAdministrationClient) or `connectionString` to create topics and subscriptions.'
          : 'The servicebus adapter needs `connectionString` or `client`.',
      );
    }
    let sdk: typeof import('@azure/service-bus');
    try {
      sdk = await import('@azure/service-bus');
    } catch (error) {
      throw new ConfigError("The servicebus adapter needs the '@azure/service-bus' package: npm install @azure/service-bus", { cause: error });
    }
    try {
      if (!this.#client) {
        this.#client = new sdk.ServiceBusClient(connectionString) as unknown as ServiceBusClientLike;
        this.#ownsClient = true;
      }
      this.#admin ??= new sdk.ServiceBusAdministrationClient(connectionString) as unknown as ServiceBusAdministrationLike;
    } catch (error) {
      // The SDK's message may quote the connection string; OmniQueueError redacts SharedAccessKey=….
      throw new ConnectionError(`Cannot open the Service Bus clients: ${(error as Error).message}`, { cause: error });
    }
  }

  ensure(request: EnsureRequest): Promise<void> {
    const key = `${request.topic}\u0000${request.group ?? ''}`;
    const options = (request.createOptions ?? {}) as ServiceBusCreateOptions;
    if (options.key) this.#keys.set(request.topic, options.key);
    else if (options.subscription?.requiresSession) this.#keys.set(request.topic, KeyProperty.SessionId);
    let ensured = this.#ensured.get(key);
    if (!ensured) {
      ensured = this.#ensure(request, options);
      ensured.catch(() => this.#ensured.delete(key));
      this.#ensured.set(key, ensured);
    }
    return ensured;
  }

  async #ensure(request: EnsureRequest, options: ServiceBusCreateOptions): Promise<void> {
    const admin = this.#requireAdmin();
    const topic = topicEntity(request.topic);
    await createTopic(admin, topic, options.topic);
    if (request.group === undefined) return;
    const subscription = subscriptionEntity(request.group);
    if (await admin.subscriptionExists(topic, subscription)) return;
    const settings: CreateSubscriptionOptions = {
      maxDeliveryCount: (request.retry?.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts) + 1,
      deadLetteringOnMessageExpiration: true,
      defaultRuleOptions: { name: RETRY_RULE_NAME, filter: { sqlExpression: retryFilterExpression(request.topic, request.group) } },
    };
    // The group reading a dead-letter topic keeps its own dead letters in its native sub-queue.
    if (request.group !== DEAD_LETTER_GROUP) {
      // The `dlq` group is created with its topic: a topic without subscriptions drops what it gets.
      const deadLetterTopic = deadLetterTopicOf(request.topic, request.group);
      await this.ensure({ topic: deadLetterTopic, group: DEAD_LETTER_GROUP, ...(options.topic ? { createOptions: { topic: options.topic } } : {}) });
      settings.forwardDeadLetteredMessagesTo = topicEntity(deadLetterTopic);
    }
    try {
      await admin.createSubscription(topic, subscription, { ...settings, ...options.subscription });
    } catch (error) {
      if (!alreadyExists(error)) throw new ConnectionError(`Cannot create subscription '${subscription}' on '${topic}': ${(error as Error).message}`, { cause: error });
    }
  }

  send(message: WireMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The servicebus adapter'));
    const sent = this.#send(message);
    this.#pending.add(sent);
    const forget = (): void => void this.#pending.delete(sent);
    sent.then(forget, forget);
    return sent;
  }

  async #send(message: WireMessage): Promise<void> {
    const limit = this.features.maxPayloadBytes!;
    if (message.payload.byteLength > limit) throw new PayloadTooLargeError(message.payload.byteLength, limit, 'Service Bus');
    const native = toServiceBusMessage(message, this.#keys.get(message.topic) ?? this.#options.key ?? KeyProperty.PartitionKey);
    const sender = this.sender(message.topic);
    try {
      if (message.delayMs > 0) await sender.scheduleMessages(native, new Date(message.publishedAt + message.delayMs));
      else await sender.sendMessages(native);
    } catch (error) {
      if (errorCode(error) === 'MessageSizeExceeded') throw new PayloadTooLargeError(message.payload.byteLength, limit, 'Service Bus', { cause: error });
      throw new PublishError(`Service Bus did not accept the message for '${message.topic}': ${(error as Error).message}`, { cause: error });
    }
  }

  /** The (cached) sender of a topic. */
  sender(topic: string): ServiceBusSenderLike {
    const entity = topicEntity(topic);
    let sender = this.#senders.get(entity);
    if (!sender) {
      sender = this.#requireClient().createSender(entity);
      this.#senders.set(entity, sender);
    }
    return sender;
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closed) throw new ClosedError('The servicebus adapter');
    if ((request.createOptions as ServiceBusCreateOptions | undefined)?.subscription?.requiresSession) {
      throw new UnsupportedFeatureError(this.name, 'consuming session-enabled subscriptions (no session receiver); use the Azure Functions trigger with isSessionsEnabled');
    }
    if (request.ensure) await this.ensure(request);
    const receiver = this.#requireClient().createReceiver(topicEntity(request.topic), subscriptionEntity(request.group), {
      receiveMode: 'peekLock',
      maxAutoLockRenewalDurationInMs: this.#options.maxAutoLockRenewalDurationInMs ?? DEFAULT_LOCK_RENEWAL_MS,
      skipParsingBodyAsJson: true,
      skipConvertingDate: true,
    });
    const consumer = new ServiceBusConsumer(this, request, receiver, onDelivery, this.#logger, () => this.#consumers.delete(consumer));
    this.#consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await Promise.allSettled([...this.#pending]);
      await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
      await Promise.allSettled([...this.#senders.values()].map((sender) => sender.close()));
      this.#senders.clear();
      if (this.#ownsClient && this.#client) await this.#client.close();
    })();
    return this.#closing;
  }

  #requireClient(): ServiceBusClientLike {
    if (!this.#client) throw new ConfigError('The servicebus adapter is not connected: call broker.init() first.');
    return this.#client;
  }

  #requireAdmin(): ServiceBusAdministrationLike {
    if (!this.#admin) throw new ConfigError('The servicebus adapter is not connected: call broker.init() first.');
    return this.#admin;
  }
}

async function createTopic(admin: ServiceBusAdministrationLike, topic: string, options: CreateTopicOptions | undefined): Promise<void> {
  if (await admin.topicExists(topic)) return;
  try {
    await admin.createTopic(topic, options);
  } catch (error) {
    if (!alreadyExists(error)) throw new ConnectionError(`Cannot create topic '${topic}': ${(error as Error).message}`, { cause: error });
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

/** Another process created the entity between the exists check and the create. */
function alreadyExists(error: unknown): boolean {
  return errorCode(error) === 'MessagingEntityAlreadyExists' || (error as { statusCode?: number } | undefined)?.statusCode === 409;
}

/** One running receiver of a group. */
class ServiceBusConsumer implements Consumption {
  readonly #unsettled = new Set<ServiceBusDelivery>();
  #subscription: { close(): Promise<void> } | undefined;
  #stopped = false;
  #closing: Promise<void> | undefined;

  constructor(
    readonly adapter: ServiceBusAdapter,
    readonly request: ConsumeRequest,
    readonly receiver: ServiceBusReceiverLike,
    private readonly listener: DeliveryListener,
    private readonly logger: Logger,
    private readonly onClosed: () => void,
  ) {}

  start(): void {
    this.#subscription = this.receiver.subscribe(
      {
        // The promise stays open until the runtime settles the delivery: with maxConcurrentCalls =
        // prefetch the SDK then never holds more than `prefetch` unsettled messages.
        processMessage: (message) =>
          new Promise<void>((release) => {
            const delivery = new ServiceBusDelivery(message, this, release);
            this.#unsettled.add(delivery);
            this.listener(delivery);
          }),
        processError: async (args) => {
          this.logger.warn(
            { topic: this.request.topic, group: this.request.group, source: args.errorSource, err: `${args.error.name}: ${args.error.message}` },
            'Service Bus receive error; the SDK retries',
          );
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: this.request.prefetch },
    );
  }

  settled(delivery: ServiceBusDelivery): void {
    this.#unsettled.delete(delivery);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#subscription?.close();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.stop();
      // Hand back what is still locked at once (deliveryCount + 1) instead of waiting for lock expiry.
      await Promise.allSettled([...this.#unsettled].map((delivery) => delivery.release()));
      this.#unsettled.clear();
      await this.receiver.close();
      this.onClosed();
    })();
    return this.#closing;
  }
}

/** One locked message handed to the runtime. */
class ServiceBusDelivery implements Delivery {
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string | undefined;
  readonly timestamp: number | undefined;
  #settled = false;

  constructor(
    readonly raw: ServiceBusReceivedMessage,
    private readonly consumer: ServiceBusConsumer,
    private readonly done: () => void,
  ) {
    const { topic, group } = consumer.request;
    this.payload = bodyBytes(raw.body);
    this.headers = headersOf(raw.applicationProperties, raw.contentType);
    this.key = raw.sessionId ?? raw.partitionKey;
    // The JS SDK reports the AMQP delivery-count: 0 on the first delivery.
    this.attempt = attemptOf(raw.applicationProperties, (raw.deliveryCount ?? 0) + 1, topic, group);
    this.nativeId = raw.messageId === undefined ? undefined : String(raw.messageId);
    this.timestamp = raw.enqueuedTimeUtc?.getTime();
  }

  ack(): Promise<void> {
    return this.#settle(() => this.consumer.receiver.completeMessage(this.raw));
  }

  nack(delayMs: number): Promise<void> {
    if (delayMs <= 0) return this.#settle(() => this.consumer.receiver.abandonMessage(this.raw));
    return this.#settle(async () => {
      try {
        await this.consumer.adapter.sender(this.consumer.request.topic).scheduleMessages(this.#redelivery(), new Date(Date.now() + delayMs));
      } catch (error) {
        await this.consumer.receiver.abandonMessage(this.raw).catch(() => undefined);
        throw new PublishError(`Scheduling the delayed redelivery failed; the message was abandoned instead: ${(error as Error).message}`, { cause: error });
      }
      await this.consumer.receiver.completeMessage(this.raw);
    });
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const properties: Record<string, ApplicationPropertyValue> = {};
    for (const name of Object.keys(record.headers)) {
      const value = record.headers[name]!;
      if (this.headers[name] !== value && name !== WireHeader.Attempt) properties[name] = value;
    }
    return this.#settle(() =>
      this.consumer.receiver.deadLetterMessage(this.raw, {
        ...properties,
        deadLetterReason: record.reason,
        deadLetterErrorDescription: (record.error ?? record.reason).slice(0, MAX_DESCRIPTION),
      }),
    );
  }

  /** Abandons an unsettled delivery when its consumer closes. */
  release(): Promise<void> {
    return this.#settle(() => this.consumer.receiver.abandonMessage(this.raw));
  }

  /** The scheduled copy of a delayed nack: same body, properties and key, the next attempt, routed to this group only. */
  #redelivery(): ServiceBusMessage {
    const raw = this.raw;
    const { topic, group } = this.consumer.request;
    const id = this.headers[WireHeader.Id] ?? this.nativeId ?? randomUUID();
    const applicationProperties: Record<string, ApplicationPropertyValue> = {
      ...(raw.applicationProperties ?? {}),
      [WireHeader.Id]: id,
      [WireHeader.Attempt]: String(this.attempt + 1),
      [ServiceBusProperty.RetryTopic]: topic,
      [ServiceBusProperty.RetryGroup]: group,
    };
    const message: ServiceBusMessage = {
      body: asBuffer(this.payload),
      // A new native id, so topics with duplicate detection do not drop the re-send; the
      // OmniQueue id travels in `omniqueue-id`.
      messageId: id.length <= 100 ? `${id}/retry-${this.attempt + 1}` : randomUUID(),
      applicationProperties,
    };
    if (raw.contentType !== undefined) message.contentType = raw.contentType;
    if (raw.correlationId !== undefined) message.correlationId = raw.correlationId;
    if (raw.subject !== undefined) message.subject = raw.subject;
    if (raw.sessionId !== undefined) message.sessionId = raw.sessionId;
    else if (raw.partitionKey !== undefined) message.partitionKey = raw.partitionKey;
    return message;
  }

  async #settle(settle: () => Promise<void>): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    try {
      await settle();
    } finally {
      this.consumer.settled(this);
      this.done();
    }
  }
}
