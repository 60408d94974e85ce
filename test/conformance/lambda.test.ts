/**
 * Conformance runner for the Lambda SQS trigger, driven through the local event-source runner on
 * the fauxqs emulator. Publishing goes through the SQS/SNS adapter; `subscribe` does what a
 * deployment does: ensure the topic and group queue, wrap the handler with `sqsHandler`, and let a
 * {@link LocalRunner} (the event source mapping) invoke it with real SQS events.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe } from 'vitest';
import { snsTopicName, sqsQueueName } from '../../adapters/sqs/names.js';
import { SqsAdapter } from '../../adapters/sqs/SqsAdapter.js';
import { Broker, deadLetterTopicOf, DEAD_LETTER_GROUP, type BrokerOptions, type SubscribeOptions } from '../../runtime/Broker.js';
import { InvalidOptionsError, MissingGroupError } from '../../runtime/errors.js';
import type { Handler } from '../../runtime/message.js';
import { resolveRetryPolicy } from '../../runtime/pipeline/retry.js';
import type { Subscription } from '../../runtime/Subscription.js';
import { validateName } from '../../runtime/validateName.js';
import { LocalRunner } from '../../triggers/lambda/localRunner.js';
import { sqsHandler } from '../../triggers/lambda/sqsHandler.js';
import { SQS_CLIENT_CONFIG, sqsMissing, sqsTestOptions } from '../brokers/sqs.js';
import { runConformance } from './runConformance.js';

const missing = await sqsMissing();
const sns = new SNSClient({ ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials } });
const sqs = new SQSClient({ ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials } });
afterAll(() => {
  sns.destroy();
  sqs.destroy();
});
const textDecoder = new TextDecoder();

/** A broker whose subscriptions are Lambda functions behind the local event-source runner. */
class LambdaBroker extends Broker {
  readonly #adapter: SqsAdapter;
  readonly #options: BrokerOptions;
  readonly #subscriptions = new Set<LambdaSubscription>();

  constructor(adapter: SqsAdapter, options: BrokerOptions) {
    super(adapter, options);
    this.#adapter = adapter;
    this.#options = options;
  }

  override async subscribe<T = unknown>(topic: string, handler: Handler<T>, groupId: string, options: SubscribeOptions<T> = {}): Promise<Subscription> {
    validateName('topic', topic);
    if (groupId === undefined || groupId === null || groupId === '') throw new MissingGroupError(topic);
    validateName('group', groupId);
    if (typeof handler !== 'function') throw new InvalidOptionsError('handler must be a function.');
    const retry = resolveRetryPolicy({ ...this.#options.retry, ...options.retry });
    const deadLetterTopic = options.deadLetter?.topic ?? deadLetterTopicOf(topic, groupId);
    if (options.ensure) {
      await this.#adapter.ensure({ topic, group: groupId, createOptions: options.createOptions, retry });
      await this.#adapter.ensure({ topic: deadLetterTopic, group: DEAD_LETTER_GROUP });
    }
    const fifo = (options.createOptions as { fifo?: boolean } | undefined)?.fifo ?? false;
    const deadLetterQueueUrl = (await sqs.send(new GetQueueUrlCommand({ QueueName: sqsQueueName(deadLetterTopic, DEAD_LETTER_GROUP, fifo) }))).QueueUrl!;
    const concurrency = options.concurrency ?? 16;
    const subscription = new LambdaSubscription(topic, groupId, (self) => this.#subscriptions.delete(self));
    const counted: Handler<T> = async (message) => {
      subscription.enter();
      try {
        return await handler(message);
      } finally {
        subscription.leave();
      }
    };
    const lambda = sqsHandler(counted, {
      topic,
      group: groupId,
      retry,
      schema: options.schema,
      idempotency: options.idempotency,
      invalidJson: options.invalidJson,
      concurrency,
      deadLetterQueueUrl,
      logger: this.#options.logger,
      tracing: this.#options.tracing,
      sqs: { ...SQS_CLIENT_CONFIG },
    });
    subscription.runner = await new LocalRunner({
      queue: sqsQueueName(topic, groupId, fifo),
      handler: lambda,
      batchSize: concurrency,
      maximumBatchingWindowMs: concurrency > 10 ? 50 : 0,
      waitTimeSeconds: 1,
      sqs: { ...SQS_CLIENT_CONFIG },
    }).start();
    this.#subscriptions.add(subscription);
    return subscription;
  }

  override async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    // super.close() first: it refuses new publishes at once; the runners use their own SQS client.
    const closing = super.close(options);
    await Promise.allSettled([...this.#subscriptions].map((subscription) => subscription.close(options)));
    await closing;
  }
}

class LambdaSubscription implements Subscription {
  runner: LocalRunner | undefined;
  #inFlight = 0;
  #peak = 0;
  #closing: Promise<void> | undefined;

  constructor(
    readonly topic: string,
    readonly group: string,
    private readonly onClosed: (self: LambdaSubscription) => void,
  ) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  get peakInFlight(): number {
    return this.#peak;
  }

  enter(): void {
    this.#inFlight++;
    this.#peak = Math.max(this.#peak, this.#inFlight);
  }

  leave(): void {
    this.#inFlight--;
  }

  close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      // Like a function instance that is shut down: invocations still running after the drain
      // time are abandoned, and their records come back after the visibility timeout.
      await Promise.race([this.runner?.stop(), new Promise((resolve) => (timer = setTimeout(resolve, options.drainTimeoutMs ?? 30_000)))]);
      clearTimeout(timer);
      this.onClosed(this);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

describe.skipIf(missing !== undefined)(`lambda${missing ? ` — skipped: ${missing}` : ''}`, () => {
  runConformance({
    name: 'lambda-sqs (local runner on fauxqs)',
    features: new SqsAdapter().features,
    timeScale: 2,
    async connect(options) {
      const broker = new LambdaBroker(new SqsAdapter(sqsTestOptions()), options ?? {});
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      const TopicArn = `arn:aws:sns:${SQS_CLIENT_CONFIG.region}:000000000000:${snsTopicName(topic, false)}`;
      const MessageAttributes = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]));
      await sns.send(new PublishCommand({ TopicArn, Message: textDecoder.decode(payload), MessageAttributes }));
    },
  });
});
