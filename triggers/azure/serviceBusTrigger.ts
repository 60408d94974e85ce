/**
 * `serviceBusTrigger(handler, options)`: the same OmniQueue handler as an Azure Functions (Node v4
 * programming model) Service Bus trigger. Each message becomes a {@link Delivery} and runs through
 * the runtime's {@link ConsumePipeline} — decode, idempotency, schema, tracing, metrics, retry policy
 * and dead-lettering are the worker's, not re-implemented here. Only settlement differs:
 *
 * | verdict | default (host settles) | `sdkBinding: true` (explicit settlement) |
 * |---|---|---|
 * | ack | return → host completes | `actions.complete(message)` |
 * | nack / throw | throw → host abandons; Service Bus redelivers, `deliveryCount` + 1 | `actions.abandon(message)` |
 * | nack with a delay | as nack: the delay cannot be honoured (logged) | as nack (logged) |
 * | deadLetter / schema / max attempts | throw {@link DeadLetterNeedsSdkBindingError}: abandoned, Service Bus dead-letters after `MaxDeliveryCount` | `actions.deadletter(message, …, reason, description)` |
 *
 * Without SDK bindings the host settles the whole invocation: with `cardinality: 'many'` one failed
 * message fails (abandons) the whole batch. With SDK bindings every message is settled on its own,
 * so a batch can partly fail, like Lambda's `batchItemFailures`.
 *
 * This module never imports `@azure/service-bus`.
 *
 * @packageDocumentation
 */
import functions, { type InvocationContext } from '@azure/functions';
import { attemptOf, bodyBytes, headersOf, restoreHeaderCase } from '../../adapters/servicebus/codec.js';
import { subscriptionEntity, topicEntity } from '../../adapters/servicebus/names.js';
import { deadLetterTopicOf } from '../../runtime/deadLetterTopicOf.js';
import type { Adapter, DeadLetterRecord, Delivery } from '../../runtime/contract.js';
import { InvalidOptionsError, MessageAbandonedError, UnsupportedFeatureError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/Logger.js';
import type { Handler } from '../../runtime/message.js';
import { ConsumePipeline } from '../../runtime/pipeline/ConsumePipeline.js';
import { resolveRetryPolicy } from '../../runtime/pipeline/retry.js';
import { pipelineServices, type HandlerPipelineOptions } from '../../runtime/pipeline/pipelineServices.js';
import { isJsonContentType } from '../../runtime/wire.js';

/**
 * The message of an SDK-type binding (`@azure/functions-extensions-servicebus`): a
 * `ServiceBusReceivedMessage` of `@azure/service-bus`, of which the trigger reads these fields.
 */
export interface SdkBindingMessage {
  readonly body?: unknown;
  readonly messageId?: string | number | Buffer;
  readonly contentType?: string;
  readonly correlationId?: string | number | Buffer;
  readonly partitionKey?: string;
  readonly sessionId?: string;
  readonly applicationProperties?: Readonly<Record<string, unknown>>;
  readonly deliveryCount?: number;
  readonly enqueuedTimeUtc?: Date;
  readonly lockToken?: string;
  /** The AMQP message; its data section holds the body bytes unchanged. */
  readonly _rawAmqpMessage?: { readonly body?: unknown };
}

/** The settlement actions of an SDK-type binding (`ServiceBusMessageActions`). */
export interface SdkBindingActions {
  complete(message: SdkBindingMessage): Promise<void>;
  abandon(message: SdkBindingMessage, propertiesToModify?: Uint8Array): Promise<void>;
  deadletter(message: SdkBindingMessage, propertiesToModify?: Uint8Array, deadletterReason?: string, deadletterErrorDescription?: string): Promise<void>;
}

/** What an SDK-type binding hands the function (`ServiceBusMessageContext`). */
export interface SdkBindingInput {
  readonly messages: SdkBindingMessage | readonly SdkBindingMessage[];
  readonly actions: SdkBindingActions;
}

/** The Azure Functions handler `serviceBusTrigger` registers and returns. */
export type ServiceBusFunctionHandler = (input: unknown, context: InvocationContext) => Promise<void>;

/** The registration calls of `@azure/functions`' `app` the trigger uses (pass your own in tests). */
export interface ServiceBusFunctionsApp {
  serviceBusTopic(name: string, options: { handler: ServiceBusFunctionHandler } & Record<string, unknown>): void;
  serviceBusQueue(name: string, options: { handler: ServiceBusFunctionHandler } & Record<string, unknown>): void;
}

/** Options of {@link serviceBusTrigger}. */
export interface ServiceBusTriggerOptions<T = unknown> extends HandlerPipelineOptions<T> {
  /** App setting (or environment variable) that holds the namespace connection (`connection` of the binding). */
  readonly connection: string;
  /** OmniQueue topic: the Service Bus topic (mapped like the adapter does). Give `topic` + `group`, or `queue`. */
  readonly topic?: string;
  /** OmniQueue group: the subscription on the topic. */
  readonly group?: string;
  /** A Service Bus queue instead of a topic subscription; the handler sees it as topic and group. */
  readonly queue?: string;
  /** Function name. Default `<topic>-<group>` (or the queue name). */
  readonly name?: string;
  /** `one` (default): one message per invocation; `many`: a batch. */
  readonly cardinality?: 'one' | 'many';
  /** Session-enabled subscription or queue. Batches are then handled in order, one at a time. */
  readonly isSessionsEnabled?: boolean;
  /**
   * SDK-type bindings: the function gets `{ messages, actions }` and settles each message itself
   * (`autoCompleteMessages: false` is set for you). Import `@azure/functions-extensions-servicebus`
   * once in the app's entry file.
   */
  readonly sdkBinding?: boolean;
  /** Messages of a batch handled at once. Default 8 (1 with sessions). */
  readonly concurrency?: number;
  /** Where to register. Default: `app` of `@azure/functions`. `false`: only return the handler. */
  readonly app?: ServiceBusFunctionsApp | false;
}

/** How one message ended. */
const Settlement = { Complete: 'complete', Abandon: 'abandon', DeadLetter: 'dead-letter' } as const;
type Settlement = (typeof Settlement)[keyof typeof Settlement];

export { MessageAbandonedError };

/**
 * A message was to be dead-lettered, but without SDK bindings a Functions trigger cannot settle a
 * message itself. It is thrown, so the host abandons the message and Service Bus dead-letters it
 * once `MaxDeliveryCount` is reached (reason `MaxDeliveryCountExceeded`). Use `sdkBinding: true` to
 * dead-letter at once with the reason.
 */
export class DeadLetterNeedsSdkBindingError extends UnsupportedFeatureError {
  /** `messageId → reason` of the messages that were to be dead-lettered. */
  readonly reasons: Readonly<Record<string, string>>;

  constructor(reasons: Readonly<Record<string, string>>) {
    super(
      'azure-functions (host-settled Service Bus trigger)',
      `dead-lettering (${Object.entries(reasons)
        .map(([id, reason]) => `${id}: ${reason}`)
        .join('; ')}): without SDK bindings the host can only complete or abandon, so the message was abandoned and Service Bus will dead-letter it after MaxDeliveryCount. Set sdkBinding: true (with @azure/functions-extensions-servicebus) to dead-letter at once`,
    );
    this.reasons = reasons;
  }
}

/**
 * Wraps an OmniQueue handler as an Azure Functions Service Bus trigger, registers it with
 * `app.serviceBusTopic` (or `app.serviceBusQueue`) and returns the function handler, so tests can
 * call it directly with a `new InvocationContext({ triggerMetadata })`.
 *
 * ```ts
 * import { serviceBusTrigger } from 'omniqueue/triggers/azure';
 * import billing from './handlers/billing.js';
 * serviceBusTrigger(billing, { connection: 'ServiceBusConnection', topic: 'orders', group: 'billing', cardinality: 'many', sdkBinding: true });
 * ```
 */
export function serviceBusTrigger<T = unknown>(handler: Handler<T>, options: ServiceBusTriggerOptions<T>): ServiceBusFunctionHandler {
  if (typeof handler !== 'function') throw new InvalidOptionsError('serviceBusTrigger(handler, options): handler must be a function.');
  if (!options || typeof options.connection !== 'string' || options.connection.length === 0) {
    throw new InvalidOptionsError('serviceBusTrigger: options.connection (the app setting with the Service Bus connection) is required.');
  }
  if (options.queue === undefined && (options.topic === undefined || options.group === undefined)) {
    throw new InvalidOptionsError('serviceBusTrigger: give topic and group (a topic subscription) or queue.');
  }
  const topic = options.queue ?? options.topic!;
  const group = options.queue ?? options.group!;
  const many = options.cardinality === 'many';
  const concurrency = options.concurrency ?? (options.isSessionsEnabled ? 1 : 8);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidOptionsError(`concurrency must be an integer ≥ 1, got ${concurrency}.`);
  const services = pipelineServices(options, 'azure_servicebus');
  const logger = services.logger;
  const pipeline = new ConsumePipeline<T>({
    adapter: NO_ADAPTER,
    topic,
    group,
    handler,
    retry: resolveRetryPolicy(options.retry),
    deadLetterTopic: deadLetterTopicOf(topic, group),
    schema: options.schema,
    idempotency: options.idempotency,
    invalidJson: options.invalidJson ?? 'dead-letter',
    retryInPlace: false,
    logger,
    metrics: services.metrics,
    tracing: services.tracing,
  });

  const run = async (deliveries: readonly TriggerDelivery[]): Promise<void> => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < deliveries.length) {
        const delivery = deliveries[next++]!;
        await pipeline.process(delivery);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, deliveries.length) }, lane));
  };

  const functionHandler: ServiceBusFunctionHandler = async (input, context) => {
    const metadata = context?.triggerMetadata ?? {};
    if (options.sdkBinding) {
      const { messages, actions } = sdkInput(input);
      const list = Array.isArray(messages) ? messages : [messages as SdkBindingMessage];
      await run(list.map((message, index) => sdkDelivery(message, actions, metadataReader(metadata, many ? index : undefined), topic, group, logger)));
      return;
    }
    const bodies = many ? (Array.isArray(input) ? input : [input]) : [input];
    const deliveries = bodies.map((body, index) => hostDelivery(body, metadataReader(metadata, many ? index : undefined), topic, group, logger));
    await run(deliveries);
    const deadLettered = deliveries.filter((delivery) => delivery.settlement === Settlement.DeadLetter);
    if (deadLettered.length > 0) {
      throw new DeadLetterNeedsSdkBindingError(Object.fromEntries(deadLettered.map((delivery) => [delivery.label, delivery.deadLetterReason ?? 'dead-letter'])));
    }
    const failed = deliveries.filter((delivery) => delivery.settlement !== Settlement.Complete);
    if (failed.length > 0) throw new MessageAbandonedError(failed.map((delivery) => delivery.label), deliveries.length);
  };

  if (options.app !== false) {
    const app = options.app ?? (functions.app as unknown as ServiceBusFunctionsApp);
    const binding: Record<string, unknown> = {
      connection: options.connection,
      cardinality: options.cardinality ?? 'one',
      ...(options.isSessionsEnabled ? { isSessionsEnabled: true } : {}),
      ...(options.sdkBinding ? { sdkBinding: true, autoCompleteMessages: false } : {}),
    };
    if (options.queue !== undefined) {
      app.serviceBusQueue(options.name ?? options.queue, { ...binding, queueName: topicEntity(options.queue), handler: functionHandler });
    } else {
      const topicName = topicEntity(topic);
      const subscriptionName = subscriptionEntity(group);
      app.serviceBusTopic(options.name ?? `${topicName}-${subscriptionName}`, { ...binding, topicName, subscriptionName, handler: functionHandler });
    }
  }
  return functionHandler;
}

/** Reads one message's trigger metadata (the `…Array` form at `index` for cardinality many). */
type MetadataReader = (key: string) => unknown;

function metadataReader(metadata: Readonly<Record<string, unknown>>, index: number | undefined): MetadataReader {
  return (key) => {
    if (index === undefined) return metadata[key];
    const values = metadata[`${key}Array`];
    return Array.isArray(values) ? values[index] : undefined;
  };
}

/** A delivery of the trigger: records its settlement. */
interface TriggerDelivery extends Delivery {
  readonly label: string;
  settlement: Settlement | undefined;
  deadLetterReason: string | undefined;
}

/** Default mode: the message as the host passed it, its metadata from `context.triggerMetadata`. */
function hostDelivery(body: unknown, read: MetadataReader, topic: string, group: string, logger: Logger): TriggerDelivery {
  // The host camel-cases metadata keys, nested ones too: restore the names OmniQueue producers listed.
  const rawProperties = (read('applicationProperties') ?? read('userProperties')) as Record<string, unknown> | undefined;
  const properties = rawProperties ? restoreHeaderCase(rawProperties) : undefined;
  const contentType = text(read('contentType'));
  const messageId = text(read('messageId'));
  const enqueued = read('enqueuedTimeUtc');
  const deliveryCount = Number(read('deliveryCount'));
  let payload: Uint8Array | string;
  let decoded: { value: unknown } | undefined;
  if (body instanceof Uint8Array) payload = body;
  else if (typeof body === 'string' && !isJsonContentType(contentType)) payload = body;
  else {
    // The Node worker already JSON-parsed the body (a JSON string body arrives as that string).
    payload = new Uint8Array(0);
    decoded = { value: body };
  }
  const delivery: TriggerDelivery = {
    label: messageId ?? '(no message id)',
    settlement: undefined,
    deadLetterReason: undefined,
    payload,
    ...(decoded ? { decoded } : {}),
    headers: headersOf(properties, contentType),
    key: text(read('sessionId')) ?? text(read('partitionKey')),
    attempt: attemptOf(properties, Number.isFinite(deliveryCount) ? deliveryCount : 1, topic, group),
    nativeId: messageId,
    timestamp: timeOf(enqueued),
    raw: body,
    ack: async () => {
      delivery.settlement ??= Settlement.Complete;
    },
    nack: async (delayMs: number) => {
      if (delivery.settlement) return;
      delivery.settlement = Settlement.Abandon;
      if (delayMs > 0) logger.warn({ topic, group, id: messageId, delayMs }, 'a Functions trigger cannot delay a redelivery; Service Bus redelivers after the abandon');
    },
    deadLetter: async (record: DeadLetterRecord) => {
      if (delivery.settlement) return;
      delivery.settlement = Settlement.DeadLetter;
      delivery.deadLetterReason = record.reason;
    },
  };
  return delivery;
}

/** SDK-binding mode: the real `ServiceBusReceivedMessage`, settled through the binding's actions. */
function sdkDelivery(message: SdkBindingMessage, actions: SdkBindingActions, read: MetadataReader, topic: string, group: string, logger: Logger): TriggerDelivery {
  const properties = message.applicationProperties;
  // The host's DeliveryCount is 1-based; the AMQP header in the message is 0-based.
  const hostCount = Number(read('deliveryCount'));
  const deliveryCount = Number.isFinite(hostCount) && hostCount >= 1 ? hostCount : (message.deliveryCount ?? 0) + 1;
  const messageId = message.messageId === undefined ? undefined : String(message.messageId);
  let settle: Promise<void> | undefined;
  const once = (action: () => Promise<void>, settlement: Settlement): Promise<void> => {
    if (settle) return settle;
    delivery.settlement = settlement;
    settle = action();
    return settle;
  };
  const delivery: TriggerDelivery = {
    label: messageId ?? message.lockToken ?? '(no message id)',
    settlement: undefined,
    deadLetterReason: undefined,
    payload: sdkBodyBytes(message),
    headers: headersOf(properties, message.contentType),
    key: message.sessionId ?? message.partitionKey,
    attempt: attemptOf(properties, deliveryCount, topic, group),
    nativeId: messageId,
    timestamp: message.enqueuedTimeUtc?.getTime() ?? timeOf(read('enqueuedTimeUtc')),
    raw: message,
    ack: () => once(() => actions.complete(message), Settlement.Complete),
    nack: (delayMs: number) =>
      once(() => {
        if (delayMs > 0) logger.warn({ topic, group, id: messageId, delayMs }, 'a Functions trigger cannot delay a redelivery; the message is abandoned now');
        return actions.abandon(message);
      }, Settlement.Abandon),
    deadLetter: (record: DeadLetterRecord) => {
      delivery.deadLetterReason = record.reason;
      return once(() => actions.deadletter(message, undefined, record.reason, (record.error ?? record.reason).slice(0, 1024)), Settlement.DeadLetter);
    },
  };
  return delivery;
}

/** The body bytes of an SDK-binding message: the AMQP data section unchanged, else the decoded body. */
function sdkBodyBytes(message: SdkBindingMessage): Uint8Array {
  const section = message._rawAmqpMessage?.body as { typecode?: unknown; content?: unknown } | undefined;
  if (section && section.typecode === 117 && section.content instanceof Uint8Array) return bodyBytes(section.content);
  return bodyBytes(message.body);
}

function sdkInput(input: unknown): SdkBindingInput {
  const candidate = input as Partial<SdkBindingInput> | undefined;
  if (!candidate || candidate.messages === undefined || !candidate.actions || typeof candidate.actions.complete !== 'function') {
    throw new InvalidOptionsError(
      "serviceBusTrigger({ sdkBinding: true }): the function did not get { messages, actions }. Import '@azure/functions-extensions-servicebus' in the app's entry file.",
    );
  }
  return candidate as SdkBindingInput;
}

function text(value: unknown): string | undefined {
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string' || typeof value === 'number') {
    const time = new Date(value).getTime();
    return Number.isFinite(time) ? time : undefined;
  }
  return undefined;
}

/** The pipeline's adapter slot: unused, since every delivery of the trigger settles dead letters itself. */
const NO_ADAPTER: Adapter = {
  name: 'azure-functions-servicebus',
  features: Object.freeze({
    consumerGroups: true,
    persistent: true,
    retainsWhileOffline: true,
    orderingPerKey: false,
    delay: 'none',
    attempts: 'broker',
    nativeDeadLetter: true,
    exactlyOnce: false,
    redeliversUnsettled: true,
  }),
  connect: async () => undefined,
  ensure: async () => undefined,
  send: () => Promise.reject(new UnsupportedFeatureError('azure-functions-servicebus', 'publishing from the trigger pipeline')),
  consume: () => Promise.reject(new UnsupportedFeatureError('azure-functions-servicebus', 'consume')),
  close: async () => undefined,
};
