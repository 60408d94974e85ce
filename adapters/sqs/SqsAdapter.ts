import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type Message as SqsMessage,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { CreateTopicCommand, ListSubscriptionsByTopicCommand, ListTopicsCommand, PublishBatchCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, DeadLetterRecord, Delivery, DeliveryListener, EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { deadLetterTopicOf, DEAD_LETTER_GROUP } from '../../runtime/Broker.js';
import { ClosedError, ConfigError, ConnectionError, InvalidOptionsError, OmniQueueError, PublishError, redact, UnsupportedFeatureError } from '../../runtime/errors.js';
import { createHash } from 'node:crypto';
import { decodeSqsMessage, encodeSqsMessage, payloadBytes, SQS_MAX_MESSAGE_BYTES, SQS_MAX_USER_HEADERS, type EncodedSqsMessage, type ReceivedAttribute } from './codec.js';
import { FIFO_SUFFIX, snsTopicName, sqsQueueName } from './names.js';

/** Settings of the SQS/SNS adapter. */
export interface SqsAdapterOptions {
  /** AWS region. Default `AWS_REGION`, else `us-east-1`. */
  readonly region?: string;
  /** One endpoint for both SNS and SQS (an emulator such as fauxqs: `http://127.0.0.1:4566`). */
  readonly endpoint?: string;
  /** Static credentials. Default: the AWS SDK's default provider chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Bring your own SQS client (its configuration wins over region/endpoint/credentials). */
  readonly sqsClient?: SQSClient;
  /** Bring your own SNS client. */
  readonly snsClient?: SNSClient;
  /** Long-polling wait of each ReceiveMessage, 0–20 s. Default 20. */
  readonly waitTimeSeconds?: number;
  /** Visibility timeout of the queues `ensure` creates, in seconds. Default 30. */
  readonly visibilityTimeoutSeconds?: number;
  /** Most ReceiveMessage calls one consumer keeps in flight (each fetches up to 10). Default 4. */
  readonly maxPollers?: number;
  /** Make every topic and group FIFO (ordering per key = MessageGroupId). Default false. */
  readonly fifo?: boolean;
}

/**
 * Creation options understood by {@link SqsAdapter.ensure} (`createOptions` of publish/subscribe).
 */
export interface SqsCreateOptions {
  /** FIFO topic and queue: key = MessageGroupId, id = MessageDeduplicationId. */
  readonly fifo?: boolean;
  /** Override the redrive policy's maxReceiveCount (default: retry.maxAttempts + 1). */
  readonly maxReceiveCount?: number;
  /** Visibility timeout of the created queue, in seconds. */
  readonly visibilityTimeoutSeconds?: number;
}

/** SQS caps ChangeMessageVisibility at 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;
/** SQS caps per-message DelaySeconds at 15 minutes. */
const MAX_DELAY_SECONDS = 900;
const DEFAULT_MAX_ATTEMPTS = 5;
const RECEIVE_ATTRIBUTES = ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId', 'MessageDeduplicationId', 'SequenceNumber', 'AWSTraceHeader'] as const;

/** Features of the adapter; `orderingPerKey` holds for FIFO topics/groups only. */
function sqsFeatures(fifo: boolean): AdapterFeatures {
  return Object.freeze({
    consumerGroups: true,
    persistent: true,
    retainsWhileOffline: true,
    orderingPerKey: fifo,
    delay: 'native',
    attempts: 'broker',
    nativeDeadLetter: true,
    exactlyOnce: false,
    redeliversUnsettled: true,
    maxPayloadBytes: SQS_MAX_MESSAGE_BYTES,
    maxHeaders: SQS_MAX_USER_HEADERS,
  });
}

interface TopicRef {
  readonly arn: string;
  readonly fifo: boolean;
}

interface QueueRef {
  readonly url: string;
  readonly fifo: boolean;
}

interface PendingPublish {
  readonly entry: { Id: string; Message: string; MessageAttributes: EncodedSqsMessage['attributes']; MessageGroupId?: string; MessageDeduplicationId?: string };
  readonly size: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * SQS/SNS adapter. Topology: topic = SNS topic; group = SQS queue `<topic>-<group>` subscribed with
 * raw message delivery, with a queue policy that lets the topic send and a redrive policy to the
 * group's dead-letter queue — the queue of group `dlq` on the runtime's dead-letter topic
 * `<topic>.<group>.dlq`, so the dead letters are readable there. FIFO topics and queues when
 * `createOptions.fifo` (or the adapter's `fifo`) is set.
 *
 * Consume: long polling, batches of up to 10 bounded by prefetch; ack = DeleteMessageBatch
 * (coalesced per tick); nack(delay) = ChangeMessageVisibility (delay rounded up to seconds, at most
 * 12 h); attempt = ApproximateReceiveCount; deadLetter = SendMessage to the group's DLQ, then delete.
 * Publish = SNS Publish, coalesced per tick into PublishBatch. Publish with a delay sends to each
 * subscribed queue with DelaySeconds (≤ 15 min, standard queues only), since SNS has no delay.
 */
export class SqsAdapter implements Adapter {
  readonly name = 'sqs';
  readonly features: AdapterFeatures;
  readonly #options: SqsAdapterOptions;
  #sqs: SQSClient | undefined;
  #sns: SNSClient | undefined;
  readonly #topics = new Map<string, TopicRef>();
  readonly #queues = new Map<string, QueueRef>();
  readonly #consumers = new Set<SqsConsumer>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #batches = new Map<string, PendingPublish[]>();
  #flushScheduled = false;
  #closed = false;

  constructor(options: SqsAdapterOptions = {}) {
    this.#options = options;
    const wait = options.waitTimeSeconds ?? 20;
    if (!Number.isInteger(wait) || wait < 0 || wait > 20) throw new InvalidOptionsError(`waitTimeSeconds must be an integer 0–20, got ${wait}.`);
    this.features = sqsFeatures(options.fifo ?? false);
  }

  /** The SQS client (after connect). */
  get sqs(): SQSClient {
    if (!this.#sqs) throw new ClosedError('The sqs adapter (not connected)');
    return this.#sqs;
  }

  /** The SNS client (after connect). */
  get sns(): SNSClient {
    if (!this.#sns) throw new ClosedError('The sqs adapter (not connected)');
    return this.#sns;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The sqs adapter');
    const { region = process.env.AWS_REGION ?? 'us-east-1', endpoint, credentials } = this.#options;
    // Each client gets its own credentials object: the SDK writes into it (and a frozen one breaks it).
    const config = () => ({ region, ...(endpoint ? { endpoint } : {}), ...(credentials ? { credentials: { ...credentials } } : {}) });
    this.#sqs ??= this.#options.sqsClient ?? new SQSClient(config());
    this.#sns ??= this.#options.snsClient ?? new SNSClient(config());
  }

  async ensure(request: EnsureRequest): Promise<void> {
    this.#assertOpen();
    const options = (request.createOptions ?? {}) as SqsCreateOptions;
    const fifo = options.fifo ?? this.#options.fifo ?? false;
    try {
      const topic = await this.#createTopic(request.topic, fifo);
      if (request.group === undefined) return;
      const attributes: Record<string, string> = {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? this.#options.visibilityTimeoutSeconds ?? 30),
      };
      if (request.group !== DEAD_LETTER_GROUP) {
        const dlq = await this.#createQueue(sqsQueueName(deadLetterTopicOf(request.topic, request.group), DEAD_LETTER_GROUP, fifo), fifo, {});
        const maxReceiveCount = options.maxReceiveCount ?? (request.retry?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS) + 1;
        // The runtime decides dead-lettering (it sees attempt = maxAttempts first); the redrive
        // policy only catches messages whose consumer died on every attempt.
        attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: await this.#queueArn(dlq.url), maxReceiveCount });
      }
      const queue = await this.#createQueue(sqsQueueName(request.topic, request.group, fifo), fifo, attributes);
      const queueArn = await this.#queueArn(queue.url);
      await this.sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: queue.url,
          Attributes: {
            Policy: JSON.stringify({
              Version: '2012-10-17',
              Statement: [
                {
                  Sid: 'omniqueue-sns',
                  Effect: 'Allow',
                  Principal: { Service: 'sns.amazonaws.com' },
                  Action: 'sqs:SendMessage',
                  Resource: queueArn,
                  Condition: { ArnEquals: { 'aws:SourceArn': topic.arn } },
                },
              ],
            }),
          },
        }),
      );
      await this.sns.send(
        new SubscribeCommand({ TopicArn: topic.arn, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' }, ReturnSubscriptionArn: true }),
      );
    } catch (error) {
      throw wrap(error, `ensure ${request.topic}${request.group ? `/${request.group}` : ''}`);
    }
  }

  send(message: WireMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The sqs adapter'));
    const sent = this.#send(message);
    this.#pending.add(sent);
    void sent.then(
      () => this.#pending.delete(sent),
      () => this.#pending.delete(sent),
    );
    return sent;
  }

  async #send(message: WireMessage): Promise<void> {
    const topic = await this.#topic(message.topic);
    const encoded = encodeSqsMessage(message.headers, message.payload, message.key, !topic.fifo);
    if (message.delayMs > 0) return this.#sendDelayed(topic, message, encoded);
    const entry: PendingPublish['entry'] = { Id: '', Message: encoded.body, MessageAttributes: encoded.attributes };
    if (topic.fifo) {
      entry.MessageGroupId = message.key ?? message.id;
      entry.MessageDeduplicationId = dedupeId(message.id);
    }
    await new Promise<void>((resolve, reject) => {
      let batch = this.#batches.get(topic.arn);
      if (!batch) this.#batches.set(topic.arn, (batch = []));
      batch.push({ entry, size: encoded.size, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Sends every publish queued this tick: PublishBatch of ≤ 10 entries and ≤ 256 KiB, or Publish for one. */
  #flush(): void {
    this.#flushScheduled = false;
    for (const [arn, queued] of this.#batches) {
      this.#batches.delete(arn);
      let chunk: PendingPublish[] = [];
      let size = 0;
      for (const item of queued) {
        if (chunk.length === 10 || (chunk.length > 0 && size + item.size > SQS_MAX_MESSAGE_BYTES)) {
          void this.#publishChunk(arn, chunk);
          chunk = [];
          size = 0;
        }
        chunk.push(item);
        size += item.size;
      }
      if (chunk.length > 0) void this.#publishChunk(arn, chunk);
    }
  }

  async #publishChunk(arn: string, chunk: PendingPublish[]): Promise<void> {
    try {
      if (chunk.length === 1) {
        const { entry } = chunk[0]!;
        await this.sns.send(
          new PublishCommand({
            TopicArn: arn,
            Message: entry.Message,
            MessageAttributes: entry.MessageAttributes,
            MessageGroupId: entry.MessageGroupId,
            MessageDeduplicationId: entry.MessageDeduplicationId,
          }),
        );
        chunk[0]!.resolve();
        return;
      }
      const entries = chunk.map((item, index) => ({ ...item.entry, Id: String(index) }));
      const result = await this.sns.send(new PublishBatchCommand({ TopicArn: arn, PublishBatchRequestEntries: entries }));
      const failed = new Map((result.Failed ?? []).map((failure) => [failure.Id, failure]));
      chunk.forEach((item, index) => {
        const failure = failed.get(String(index));
        if (failure) item.reject(new PublishError(`SNS refused the message: ${failure.Code ?? ''} ${failure.Message ?? ''}`.trim(), { retryable: !failure.SenderFault }));
        else item.resolve();
      });
    } catch (error) {
      const wrapped = wrap(error, 'publish');
      for (const item of chunk) item.reject(wrapped);
    }
  }

  /** SNS has no delay: send to each subscribed queue with DelaySeconds instead. */
  async #sendDelayed(topic: TopicRef, message: WireMessage, encoded: EncodedSqsMessage): Promise<void> {
    if (topic.fifo) throw new UnsupportedFeatureError('sqs', 'delayed publish to a FIFO topic (FIFO queues have no per-message delay)');
    const delaySeconds = Math.ceil(message.delayMs / 1000);
    if (delaySeconds > MAX_DELAY_SECONDS) throw new InvalidOptionsError(`SQS delays a message at most ${MAX_DELAY_SECONDS} s (15 min); got delayMs ${message.delayMs}.`);
    try {
      const queueArns: string[] = [];
      let token: string | undefined;
      do {
        const page = await this.sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topic.arn, NextToken: token }));
        for (const subscription of page.Subscriptions ?? []) if (subscription.Protocol === 'sqs' && subscription.Endpoint) queueArns.push(subscription.Endpoint);
        token = page.NextToken;
      } while (token);
      await Promise.all(
        queueArns.map(async (arn) => {
          const url = await this.#queueUrlFromArn(arn);
          await this.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: encoded.body, MessageAttributes: encoded.attributes, DelaySeconds: delaySeconds }));
        }),
      );
    } catch (error) {
      throw wrap(error, 'delayed publish');
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    this.#assertOpen();
    if (request.ensure) await this.ensure(request);
    const fifo = ((request.createOptions ?? {}) as SqsCreateOptions).fifo ?? this.#options.fifo;
    const queue = await this.#findQueue(request.topic, request.group, fifo);
    const consumer = new SqsConsumer(this, queue, request.topic, request.group, request.prefetch, onDelivery, {
      waitTimeSeconds: this.#options.waitTimeSeconds ?? 20,
      maxPollers: Math.max(1, this.#options.maxPollers ?? 4),
    });
    this.#consumers.add(consumer);
    consumer.onClosed = () => this.#consumers.delete(consumer);
    consumer.start();
    return consumer;
  }

  /** Sends a dead-lettered delivery to the DLQ queue of `record.topic` (group `dlq`). */
  async sendToDeadLetterQueue(record: DeadLetterRecord, payload: Uint8Array | string, key: string | undefined, fifo: boolean, sourceId: string): Promise<void> {
    const queue = await this.#findQueue(record.topic, DEAD_LETTER_GROUP, fifo);
    const encoded = encodeSqsMessage(record.headers, payloadBytes(payload), key, !queue.fifo);
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: encoded.body,
        MessageAttributes: encoded.attributes,
        ...(queue.fifo ? { MessageGroupId: key ?? sourceId, MessageDeduplicationId: dedupeId(`${sourceId}-dlq`) } : {}),
      }),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    await Promise.allSettled([...this.#pending]);
    if (!this.#options.sqsClient) this.#sqs?.destroy();
    if (!this.#options.snsClient) this.#sns?.destroy();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('The sqs adapter');
    if (!this.#sqs) throw new ClosedError('The sqs adapter (not connected)');
  }

  async #createTopic(topic: string, fifo: boolean): Promise<TopicRef> {
    const name = snsTopicName(topic, fifo);
    const result = await this.sns.send(
      new CreateTopicCommand({ Name: name, Attributes: fifo ? { FifoTopic: 'true', ContentBasedDeduplication: 'false' } : undefined }),
    );
    const ref = { arn: result.TopicArn!, fifo };
    this.#topics.set(topic, ref);
    return ref;
  }

  /** Creates a queue (idempotently: attributes are set after creation so an existing queue is updated). */
  async #createQueue(name: string, fifo: boolean, attributes: Record<string, string>): Promise<QueueRef> {
    const result = await this.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo ? { FifoQueue: 'true' } : undefined }));
    const ref = { url: result.QueueUrl!, fifo };
    if (Object.keys(attributes).length > 0) await this.sqs.send(new SetQueueAttributesCommand({ QueueUrl: ref.url, Attributes: attributes }));
    this.#queues.set(name, ref);
    return ref;
  }

  async #queueArn(url: string): Promise<string> {
    const result = await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    return result.Attributes!.QueueArn!;
  }

  async #queueUrlFromArn(arn: string): Promise<string> {
    const [, , , , account, name] = arn.split(':');
    const result = await this.sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
    return result.QueueUrl!;
  }

  /** The topic's ARN: from `ensure`, else looked up (standard name first, then FIFO). */
  async #topic(topic: string): Promise<TopicRef> {
    const cached = this.#topics.get(topic);
    if (cached) return cached;
    const standard = snsTopicName(topic, false);
    const fifo = snsTopicName(topic, true);
    let token: string | undefined;
    try {
      do {
        const page = await this.sns.send(new ListTopicsCommand({ NextToken: token }));
        for (const { TopicArn } of page.Topics ?? []) {
          const name = TopicArn?.slice(TopicArn.lastIndexOf(':') + 1);
          if (name === standard || name === fifo) {
            const ref = { arn: TopicArn!, fifo: name.endsWith(FIFO_SUFFIX) };
            this.#topics.set(topic, ref);
            if (!this.#options.fifo || ref.fifo) return ref;
          }
        }
        token = page.NextToken;
      } while (token);
    } catch (error) {
      throw wrap(error, `look up topic ${topic}`);
    }
    const found = this.#topics.get(topic);
    if (found) return found;
    throw new PublishError(`SNS topic '${standard}' for topic '${topic}' does not exist: publish with { ensure: true } or create it first.`, { retryable: false });
  }

  async #findQueue(topic: string, group: string, fifo: boolean | undefined): Promise<QueueRef> {
    const candidates = fifo === undefined ? [false, true] : [fifo];
    for (const isFifo of candidates) {
      const name = sqsQueueName(topic, group, isFifo);
      const cached = this.#queues.get(name);
      if (cached) return cached;
      try {
        const result = await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
        const ref = { url: result.QueueUrl!, fifo: isFifo };
        this.#queues.set(name, ref);
        return ref;
      } catch (error) {
        if (!(error instanceof QueueDoesNotExist) && (error as { name?: string }).name !== 'QueueDoesNotExist' && (error as { name?: string }).name !== 'AWS.SimpleQueueService.NonExistentQueue') {
          throw wrap(error, `look up queue ${name}`);
        }
      }
    }
    throw new ConfigError(`Group '${group}' of topic '${topic}' has no SQS queue ('${sqsQueueName(topic, group, false)}'): subscribe with { ensure: true } or create it first.`);
  }
}

interface ConsumerSettings {
  readonly waitTimeSeconds: number;
  readonly maxPollers: number;
}

interface PendingSettle {
  readonly entry: { Id: string; ReceiptHandle: string; VisibilityTimeout?: number };
  resolve(): void;
  reject(error: unknown): void;
}

/** One consumer of one group's queue: long-polling loops bounded by prefetch credit. */
class SqsConsumer implements Consumption {
  readonly #unsettled = new Set<SqsDelivery>();
  readonly #aborts = new Set<AbortController>();
  #reserved = 0;
  #pollers = 0;
  #stopped = false;
  #closed: Promise<void> | undefined;
  #deletes: PendingSettle[] = [];
  #flushScheduled = false;
  readonly #creditWaiters = new Set<() => void>();
  readonly #loops: Promise<void>[] = [];
  onClosed: (() => void) | undefined;

  constructor(
    readonly adapter: SqsAdapter,
    readonly queue: QueueRef,
    readonly topic: string,
    readonly group: string,
    private readonly prefetch: number,
    private readonly listener: DeliveryListener,
    private readonly settings: ConsumerSettings,
  ) {}

  start(): void {
    const pollers = Math.min(this.settings.maxPollers, Math.ceil(this.prefetch / 10));
    for (let i = 0; i < pollers; i++) this.#loops.push(this.#poll());
  }

  get #credit(): number {
    return this.prefetch - this.#unsettled.size - this.#reserved;
  }

  async #poll(): Promise<void> {
    this.#pollers++;
    let failures = 0;
    try {
      while (!this.#stopped) {
        if (this.#credit <= 0) {
          await new Promise<void>((resolve) => this.#creditWaiters.add(resolve));
          continue;
        }
        const count = Math.min(10, this.#credit);
        this.#reserved += count;
        const abort = new AbortController();
        this.#aborts.add(abort);
        let messages: SqsMessage[] = [];
        try {
          const result = await this.adapter.sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: this.queue.url,
              MaxNumberOfMessages: count,
              WaitTimeSeconds: this.settings.waitTimeSeconds,
              MessageAttributeNames: ['All'],
              MessageSystemAttributeNames: [...RECEIVE_ATTRIBUTES],
            }),
            { abortSignal: abort.signal },
          );
          messages = result.Messages ?? [];
          failures = 0;
        } catch (error) {
          if (this.#stopped) break;
          failures++;
          // Connection trouble: back off (capped) and poll again; the SDK already retried the call.
          await sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
        } finally {
          this.#aborts.delete(abort);
          this.#reserved -= count;
        }
        if (this.#stopped && messages.length > 0) {
          // Fetched while stopping: hand them straight back to the queue.
          await this.#release(messages.map((message) => message.ReceiptHandle!));
          break;
        }
        for (const native of messages) {
          const delivery = new SqsDelivery(native, this);
          this.#unsettled.add(delivery);
          this.listener(delivery);
        }
      }
    } finally {
      this.#pollers--;
    }
  }

  /** A delivery was settled: free its credit. */
  settled(delivery: SqsDelivery): boolean {
    if (!this.#unsettled.delete(delivery)) return false;
    this.#wake();
    return true;
  }

  #wake(): void {
    const waiters = [...this.#creditWaiters];
    this.#creditWaiters.clear();
    for (const waiter of waiters) waiter();
  }

  /** Deletes coalesced per tick into DeleteMessageBatch calls of up to 10. */
  delete(receiptHandle: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#deletes.push({ entry: { Id: '', ReceiptHandle: receiptHandle }, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flushDeletes());
      }
    });
  }

  #flushDeletes(): void {
    this.#flushScheduled = false;
    const pending = this.#deletes;
    this.#deletes = [];
    for (let i = 0; i < pending.length; i += 10) void this.#deleteChunk(pending.slice(i, i + 10));
  }

  async #deleteChunk(chunk: PendingSettle[]): Promise<void> {
    try {
      const result = await this.adapter.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.queue.url, Entries: chunk.map((item, index) => ({ Id: String(index), ReceiptHandle: item.entry.ReceiptHandle })) }),
      );
      const failed = new Map((result.Failed ?? []).map((failure) => [failure.Id, failure]));
      chunk.forEach((item, index) => {
        const failure = failed.get(String(index));
        if (failure) item.reject(new ConnectionError(`SQS did not delete the message: ${failure.Code ?? ''} ${failure.Message ?? ''}`.trim()));
        else item.resolve();
      });
    } catch (error) {
      const wrapped = wrap(error, 'ack');
      for (const item of chunk) item.reject(wrapped);
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    for (const abort of this.#aborts) abort.abort();
    this.#wake();
    return Promise.allSettled(this.#loops).then(() => undefined);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.stop();
      const open = [...this.#unsettled];
      this.#unsettled.clear();
      // Hand unsettled messages back now rather than after their visibility timeout.
      await this.#release(open.map((delivery) => delivery.receiptHandle));
      this.onClosed?.();
    })();
    return this.#closed;
  }

  /** Makes messages visible again at once (best effort: otherwise their visibility timeout does it). */
  async #release(receiptHandles: string[]): Promise<void> {
    for (let i = 0; i < receiptHandles.length; i += 10) {
      const chunk = receiptHandles.slice(i, i + 10);
      await this.adapter.sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queue.url,
            Entries: chunk.map((receiptHandle, index) => ({ Id: String(index), ReceiptHandle: receiptHandle, VisibilityTimeout: 0 })),
          }),
        )
        .catch(() => undefined);
    }
  }
}

/** One received SQS message. */
class SqsDelivery implements Delivery {
  readonly payload: Uint8Array | string;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string | undefined;
  readonly timestamp: number | undefined;
  readonly receiptHandle: string;

  constructor(
    readonly raw: SqsMessage,
    private readonly consumer: SqsConsumer,
  ) {
    const decoded = decodeSqsMessage(raw.Body ?? '', sdkAttributes(raw.MessageAttributes));
    const system = raw.Attributes ?? {};
    this.payload = decoded.payload;
    this.headers = decoded.headers;
    this.key = system.MessageGroupId ?? decoded.key;
    this.attempt = Math.max(1, Number(system.ApproximateReceiveCount ?? '1') || 1);
    this.nativeId = raw.MessageId;
    this.timestamp = system.SentTimestamp ? Number(system.SentTimestamp) : undefined;
    this.receiptHandle = raw.ReceiptHandle!;
  }

  async ack(): Promise<void> {
    if (!this.consumer.settled(this)) return;
    await this.consumer.delete(this.receiptHandle);
  }

  async nack(delayMs: number): Promise<void> {
    if (!this.consumer.settled(this)) return;
    const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(delayMs / 1000)));
    try {
      await this.consumer.adapter.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.consumer.queue.url, ReceiptHandle: this.receiptHandle, VisibilityTimeout: seconds }));
    } catch (error) {
      throw wrap(error, 'nack');
    }
  }

  async deadLetter(record: DeadLetterRecord): Promise<void> {
    if (!this.consumer.settled(this)) return;
    try {
      await this.consumer.adapter.sendToDeadLetterQueue(record, this.payload, this.key, this.consumer.queue.fifo, this.nativeId ?? record.headers['omniqueue-id'] ?? '');
    } catch (error) {
      throw wrap(error, 'dead-letter');
    }
    await this.consumer.delete(this.receiptHandle);
  }
}

/** The SDK's received attributes in the codec's shape. */
function sdkAttributes(attributes: Record<string, MessageAttributeValue> | undefined): Record<string, ReceivedAttribute> | undefined {
  if (!attributes) return undefined;
  const result: Record<string, ReceivedAttribute> = {};
  for (const name of Object.keys(attributes)) {
    const value = attributes[name]!;
    result[name] = {
      type: value.DataType ?? 'String',
      stringValue: value.StringValue,
      binaryBase64: value.BinaryValue ? Buffer.from(value.BinaryValue).toString('base64') : undefined,
    };
  }
  return result;
}

/** A MessageDeduplicationId (≤ 128 chars) for an OmniQueue id. */
function dedupeId(id: string): string {
  return id.length <= 128 && /^[\x21-\x7e]+$/.test(id) ? id : createHash('sha256').update(id).digest('hex');
}

function wrap(error: unknown, operation: string): OmniQueueError {
  if (error instanceof OmniQueueError) return error;
  const name = (error as { name?: string }).name ?? 'Error';
  const message = redact(`SQS/SNS ${operation} failed: ${name}: ${(error as Error).message ?? String(error)}`);
  const fault = (error as { $fault?: string }).$fault;
  if (fault === 'client') return operation.includes('publish') ? new PublishError(message, { cause: error, retryable: false }) : new ConfigError(message, { cause: error });
  return new ConnectionError(message, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
