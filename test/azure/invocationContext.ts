/**
 * Factories for what the Azure Functions host hands a Node v4 Service Bus trigger, and a small host
 * loop that settles like the host does (peek-lock: success → complete, throw → abandon with
 * `DeliveryCount` + 1, dead-letter at `MaxDeliveryCount`). The contexts are REAL
 * `InvocationContext` objects (its constructor is meant for tests); the trigger metadata is built
 * the way the host sends it (PascalCase names, dates as ISO strings, `…Array` forms for batches)
 * and then camel-cased the way the Node worker does (`TenantId` → `tenantId`, nested keys too).
 */
import { randomUUID } from 'node:crypto';
import functions, { type InvocationContext } from '@azure/functions';
import { toServiceBusMessage, lowerFirst } from '../../adapters/servicebus/codec.js';
import type { SdkBindingActions, SdkBindingInput, SdkBindingMessage, ServiceBusFunctionHandler } from '../../triggers/azure/serviceBusTrigger.js';
import { WireHeader } from '../../runtime/wire.js';

/** One message in the simulated subscription, as Service Bus stores it. */
export interface HostMessage {
  readonly body: Buffer;
  readonly messageId: string;
  readonly contentType: string | undefined;
  readonly correlationId: string | undefined;
  readonly partitionKey: string | undefined;
  readonly sessionId: string | undefined;
  readonly applicationProperties: Record<string, string | number | boolean>;
  readonly enqueuedTimeUtc: Date;
  readonly sequenceNumber: number;
  /** Host view: 1 on the first delivery. */
  deliveryCount: number;
  lockToken: string;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
}

let sequence = 0;
const textEncoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A message as OmniQueue's Service Bus adapter publishes it (same codec). */
export function publishedByOmniQueue(body: unknown, options: { id?: string; key?: string; headers?: Record<string, string> } = {}): HostMessage {
  const id = options.id ?? randomUUID();
  const bytes = body instanceof Uint8Array;
  const payload = bytes ? body : textEncoder.encode(JSON.stringify(body));
  const headers: Record<string, string> = {
    ...options.headers,
    [WireHeader.ContentType]: bytes ? 'application/octet-stream' : 'application/json',
    [WireHeader.Id]: id,
    [WireHeader.PublishedAt]: String(Date.now()),
  };
  const native = toServiceBusMessage({ id, topic: 'unused', key: options.key, headers, payload, body, publishedAt: Date.now(), delayMs: 0 }, 'partitionKey');
  return hostMessage({
    body: Buffer.from(native.body as Uint8Array),
    messageId: String(native.messageId),
    contentType: native.contentType,
    partitionKey: native.partitionKey,
    applicationProperties: native.applicationProperties as Record<string, string>,
  });
}

/** A message from a plain Service Bus client (no OmniQueue properties). */
export function foreignMessage(body: string | Buffer, properties: Record<string, string | number | boolean> = {}, contentType?: string): HostMessage {
  return hostMessage({ body: typeof body === 'string' ? Buffer.from(body) : body, messageId: randomUUID().replace(/-/g, ''), contentType, applicationProperties: properties });
}

function hostMessage(fields: Pick<HostMessage, 'body' | 'messageId' | 'contentType' | 'applicationProperties'> & Partial<HostMessage>): HostMessage {
  return {
    correlationId: undefined,
    partitionKey: undefined,
    sessionId: undefined,
    enqueuedTimeUtc: new Date(),
    sequenceNumber: ++sequence,
    deliveryCount: 1,
    lockToken: randomUUID(),
    ...fields,
  };
}

/** The trigger input the Node worker builds without SDK bindings: UTF-8 text is JSON-parsed when it can be, other bytes stay a Buffer. */
export function hostInput(message: HostMessage): unknown {
  let textBody: string;
  try {
    textBody = strictUtf8.decode(message.body);
  } catch {
    return Buffer.from(message.body);
  }
  try {
    return JSON.parse(textBody);
  } catch {
    return textBody;
  }
}

/** The host's metadata of one message, PascalCase as the host sends it. */
function hostMetadataOf(message: HostMessage): Record<string, unknown> {
  return {
    DeliveryCount: message.deliveryCount,
    DeadLetterSource: null,
    LockToken: message.lockToken,
    ExpiresAtUtc: new Date(message.enqueuedTimeUtc.getTime() + 14 * 86_400_000).toISOString(),
    EnqueuedTimeUtc: message.enqueuedTimeUtc.toISOString(),
    MessageId: message.messageId,
    ContentType: message.contentType ?? null,
    ReplyTo: null,
    SequenceNumber: message.sequenceNumber,
    To: null,
    Label: null,
    Subject: null,
    CorrelationId: message.correlationId ?? null,
    ApplicationProperties: { ...message.applicationProperties },
    UserProperties: { ...message.applicationProperties },
    SessionId: message.sessionId ?? null,
    PartitionKey: message.partitionKey ?? null,
  };
}

/** What the Node worker does to trigger metadata: lower-case the first letter of every key, nested too. */
export function camelCaseLikeTheWorker(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelCaseLikeTheWorker);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [lowerFirst(key), camelCaseLikeTheWorker(inner)]));
}

/** A real InvocationContext for one message (cardinality one). */
export function singleMessageContext(message: HostMessage, functionName = 'orders-billing'): InvocationContext {
  return new functions.InvocationContext({ invocationId: randomUUID(), functionName, triggerMetadata: camelCaseLikeTheWorker(hostMetadataOf(message)) as Record<string, unknown>, logHandler: () => {} });
}

/** A real InvocationContext for a batch (cardinality many): every field as an `…Array`. */
export function batchContext(messages: readonly HostMessage[], functionName = 'orders-billing'): InvocationContext {
  const per = messages.map(hostMetadataOf);
  const triggerMetadata: Record<string, unknown> = {};
  for (const key of Object.keys(per[0] ?? {})) triggerMetadata[`${key}Array`] = per.map((metadata) => metadata[key]);
  return new functions.InvocationContext({ invocationId: randomUUID(), functionName, triggerMetadata: camelCaseLikeTheWorker(triggerMetadata) as Record<string, unknown>, logHandler: () => {} });
}

/** A `ServiceBusReceivedMessage` as `@azure/functions-extensions-servicebus` builds it from the host's AMQP bytes. */
export function sdkBindingMessage(message: HostMessage): SdkBindingMessage {
  const text = message.body.toString('utf8');
  let body: unknown = text;
  if (message.contentType === 'application/json') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return {
    body,
    messageId: message.messageId,
    contentType: message.contentType,
    correlationId: message.correlationId,
    partitionKey: message.partitionKey,
    sessionId: message.sessionId,
    applicationProperties: { ...message.applicationProperties },
    // The AMQP header count: 0 on the first delivery.
    deliveryCount: message.deliveryCount - 1,
    enqueuedTimeUtc: message.enqueuedTimeUtc,
    lockToken: message.lockToken,
    _rawAmqpMessage: { body: { typecode: 117, content: Buffer.from(message.body) } },
  };
}

/** One recorded settlement action. */
export interface ActionCall {
  readonly action: 'complete' | 'abandon' | 'deadletter';
  readonly messageId: string;
  readonly reason?: string;
  readonly description?: string;
}

/** Settings of the simulated host. */
export interface HostSettings {
  readonly cardinality?: 'one' | 'many';
  readonly sdkBinding?: boolean;
  /** Messages per batch (cardinality many). Default 16. */
  readonly batchSize?: number;
  /** The subscription's MaxDeliveryCount. Default 10 (Service Bus default). */
  readonly maxDeliveryCount?: number;
}

/** One invocation's result. */
export interface Invocation {
  readonly messages: readonly HostMessage[];
  readonly contexts: readonly InvocationContext[];
  readonly error: unknown;
}

/**
 * One subscription driven the way the Functions host drives a Service Bus trigger: takes messages
 * (peek-lock), builds the input and a real InvocationContext, invokes the function and settles.
 */
export class FunctionsHostDouble {
  readonly active: HostMessage[] = [];
  readonly deadLetters: HostMessage[] = [];
  readonly completed: HostMessage[] = [];
  readonly actions: ActionCall[] = [];
  readonly invocations: Invocation[] = [];

  constructor(private readonly settings: HostSettings = {}) {}

  send(...messages: HostMessage[]): void {
    this.active.push(...messages);
  }

  /** Runs invocations until the subscription is empty (or `limit` invocations). */
  async drain(handler: ServiceBusFunctionHandler, limit = 50): Promise<void> {
    for (let i = 0; i < limit && this.active.length > 0; i++) await this.invoke(handler);
  }

  /** One invocation with the next message (or batch). */
  async invoke(handler: ServiceBusFunctionHandler): Promise<Invocation> {
    const many = this.settings.cardinality === 'many';
    const taken = this.active.splice(0, many ? (this.settings.batchSize ?? 16) : 1);
    for (const message of taken) message.lockToken = randomUUID();
    const context = many ? batchContext(taken) : singleMessageContext(taken[0]!);
    let input: unknown;
    const settled = new Set<HostMessage>();
    if (this.settings.sdkBinding) {
      const sdkMessages = taken.map(sdkBindingMessage);
      const byToken = new Map(taken.map((message) => [message.lockToken, message]));
      const take = (message: SdkBindingMessage): HostMessage => {
        const host = byToken.get(message.lockToken ?? '');
        if (!host || settled.has(host)) throw new Error('MessageLockLost: the lock supplied is invalid');
        settled.add(host);
        return host;
      };
      const actions: SdkBindingActions = {
        complete: async (message) => {
          this.actions.push({ action: 'complete', messageId: String(message.messageId) });
          this.completed.push(take(message));
        },
        abandon: async (message) => {
          this.actions.push({ action: 'abandon', messageId: String(message.messageId) });
          this.#abandon(take(message));
        },
        deadletter: async (message, _properties, reason, description) => {
          this.actions.push({ action: 'deadletter', messageId: String(message.messageId), ...(reason === undefined ? {} : { reason }), ...(description === undefined ? {} : { description }) });
          const host = take(message);
          host.deadLetterReason = reason;
          host.deadLetterErrorDescription = description;
          this.deadLetters.push(host);
        },
      };
      input = { messages: many ? sdkMessages : sdkMessages[0]!, actions } satisfies SdkBindingInput;
    } else {
      input = many ? taken.map(hostInput) : hostInput(taken[0]!);
    }
    let error: unknown;
    try {
      await handler(input, context);
    } catch (thrown) {
      error = thrown;
    }
    if (!this.settings.sdkBinding) {
      // autoCompleteMessages: success completes every message, a throw abandons every message.
      for (const message of taken) {
        if (error === undefined) this.completed.push(message);
        else this.#abandon(message);
      }
    } else {
      // Not settled by the function: the lock expires and Service Bus redelivers.
      for (const message of taken) if (!settled.has(message)) this.#abandon(message);
    }
    const invocation = { messages: taken, contexts: [context], error };
    this.invocations.push(invocation);
    return invocation;
  }

  #abandon(message: HostMessage): void {
    message.deliveryCount++;
    if (message.deliveryCount > (this.settings.maxDeliveryCount ?? 10)) {
      message.deliveryCount--;
      message.deadLetterReason = 'MaxDeliveryCountExceeded';
      this.deadLetters.push(message);
      return;
    }
    this.active.push(message);
  }
}
