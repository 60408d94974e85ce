import type { StandardSchemaV1 } from '@standard-schema/spec';
import { DEAD_LETTER_GROUP, deadLetterTopicOf } from './deadLetterTopicOf.js';
import { newMessageId } from './newMessageId.js';
import type { Adapter, AdapterFeatures, WireMessage } from './contract.js';
import { ClosedError, InvalidMessageError, InvalidOptionsError, MissingGroupError, NotInitializedError, UnsupportedFeatureError } from './errors.js';
import { stderrLogger, type Logger } from './Logger.js';
import type { Handler, Message, PublishInput } from './message.js';
import { ReplyInbox } from './ReplyInbox.js';
import { ConsumePipeline, type IdempotencyOptions } from './pipeline/ConsumePipeline.js';
import { resolveRetryPolicy, type RetryPolicy } from './pipeline/retry.js';
import { FanoutMetricsSink, OpenTelemetryMetricsSink, Tracing, type MetricsSink } from './pipeline/Telemetry.js';
import { SubscriptionRunner, type Subscription } from './Subscription.js';
import { validateName } from './validateName.js';
import { BINARY_CONTENT_TYPE, encodeBody, JSON_CONTENT_TYPE, normaliseHeaders, WireHeader } from './wire.js';

export { DEAD_LETTER_GROUP, deadLetterTopicOf };

/** Options of a {@link Broker}: the cross-cutting parts of the pipeline. */
export interface BrokerOptions {
  /** Where OmniQueue logs. A pino logger fits. Default: warnings and errors to stderr as JSON. */
  readonly logger?: Logger;
  /** Extra metrics sinks (the worker adds Prometheus). OpenTelemetry metrics are always fed. */
  readonly metrics?: readonly MetricsSink[];
  /** OpenTelemetry spans and trace-context headers. Default true. */
  readonly tracing?: boolean;
  /** Defaults for every subscription's retry policy. */
  readonly retry?: Partial<RetryPolicy>;
}

/** Options of `publish` (the book's `SendOptions`). */
export interface PublishOptions {
  /** Create the topic if it does not exist. */
  readonly ensure?: boolean;
  /** Broker-specific creation options, passed through to the adapter. */
  readonly createOptions?: Readonly<Record<string, unknown>>;
  /** Deliver no sooner than this many milliseconds from now. */
  readonly delayMs?: number;
}

/** What `publish` resolves to once the broker accepted the message. */
export interface PublishReceipt {
  /** The message id (the producer's, or the generated UUIDv7). */
  readonly id: string;
}

/** Options of `subscribe` (the book's `ConsumeOptions`). */
export interface SubscribeOptions<T = unknown> {
  /** Create the topic and the group if missing. */
  readonly ensure?: boolean;
  /** Broker-specific creation options, passed through to the adapter. */
  readonly createOptions?: Readonly<Record<string, unknown>>;
  /** Most messages handled at once by this subscription; also the adapter's prefetch. Default 16. */
  readonly concurrency?: number;
  /** Retry policy; the broker's defaults fill what is left out. */
  readonly retry?: Partial<RetryPolicy>;
  /** Dead-letter destination. Default topic `<topic>.<group>.dlq`, readable by the group `dlq`. */
  readonly deadLetter?: { readonly topic?: string };
  /** A Standard Schema (zod, valibot, arktype …): a body that fails it is dead-lettered at once. */
  readonly schema?: StandardSchemaV1<unknown, T>;
  /** Idempotent consumer: skip ids this group already processed. */
  readonly idempotency?: IdempotencyOptions;
  /**
   * `key`: messages with the same key are handled one at a time, in order, and retried in place so a
   * retry never lets a later same-key message overtake. Other keys are not blocked. Default `none`.
   */
  readonly ordering?: 'none' | 'key';
  /** What to do with a JSON-typed payload that is not valid JSON. Default `dead-letter`. */
  readonly invalidJson?: 'dead-letter' | 'deliver-raw';
}


const DEFAULT_CONCURRENCY = 16;
/** The options of a `publish` called without any, shared. */
const NO_PUBLISH_OPTIONS: PublishOptions = Object.freeze({});

/**
 * The broker API of the OmniQueue book: `init`, `publish`, `subscribe`, `close`, over any adapter.
 * Everything between the user's code and the adapter (ids, encoding, trace context, retries,
 * dead letters, idempotency, schema checks, concurrency, metrics) happens here, once.
 */
export class Broker implements AsyncDisposable {
  readonly #adapter: Adapter;
  readonly #logger: Logger;
  readonly #metrics: MetricsSink;
  readonly #tracing: Tracing | undefined;
  readonly #retryDefaults: Partial<RetryPolicy> | undefined;
  readonly #subscriptions = new Set<SubscriptionRunner>();
  /** Publishes whose send has not settled yet: `close` waits for them (a count, no per-publish set entry). */
  #publishesUnderWay = 0;
  /** Ends `close`'s wait once the last publish under way has settled. */
  #publishesSettled: (() => void) | undefined;
  readonly #ensured = new Set<string>();
  #replies: ReplyInbox | undefined;
  #state: 'new' | 'initializing' | 'ready' | 'closing' | 'closed' = 'new';
  #initializing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(adapter: Adapter, options: BrokerOptions = {}) {
    this.#adapter = adapter;
    this.#logger = options.logger ?? stderrLogger;
    const sinks = [new OpenTelemetryMetricsSink(), ...(options.metrics ?? [])];
    this.#metrics = sinks.length === 1 ? sinks[0]! : new FanoutMetricsSink(sinks);
    this.#tracing = options.tracing === false ? undefined : new Tracing(adapter.name);
    this.#retryDefaults = options.retry;
  }

  /** The adapter underneath: its name and declared features. */
  get adapter(): Pick<Adapter, 'name' | 'features'> {
    return this.#adapter;
  }

  /** The adapter's declared features. */
  get features(): AdapterFeatures {
    return this.#adapter.features;
  }

  /** Connects the adapter. Call once before publishing or subscribing; a second call is a no-op. */
  init(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new ClosedError('This broker'));
    this.#initializing ??= (async () => {
      this.#state = 'initializing';
      try {
        await this.#adapter.connect();
      } catch (error) {
        this.#state = 'new';
        this.#initializing = undefined;
        throw error;
      }
      this.#state = 'ready';
    })();
    return this.#initializing;
  }

  /**
   * Publishes one message to `topic`. Resolves with the message id once the broker accepted it
   * (confirm, acks=all, PubAck …); rejects with a typed error otherwise. Every group of the topic
   * gets a copy.
   */
  publish<T>(topic: string, message: PublishInput<T>, options: PublishOptions = NO_PUBLISH_OPTIONS): Promise<PublishReceipt> {
    return this.#publish(topic, message, options, undefined);
  }

  /**
   * Request–reply over any adapter: publishes `message` to `topic` with `omniqueue-reply-to` and
   * `omniqueue-correlation-id` headers and resolves with the first reply (see {@link Broker.reply}),
   * or rejects with a `TimeoutError` after `timeoutMs` (default 30 s). Replies travel on a topic of
   * this broker instance, created on first use.
   */
  async request<TReply = unknown, T = unknown>(topic: string, message: PublishInput<T>, options: PublishOptions & { timeoutMs?: number } = {}): Promise<Message<TReply>> {
    this.#assertReady('request');
    this.#replies ??= new ReplyInbox(this);
    const inbox = this.#replies;
    const replyTopic = await inbox.topic();
    const id = message.id ?? newMessageId();
    const reply = inbox.expect<TReply>(id, options.timeoutMs ?? 30_000);
    try {
      await this.#publish(topic, { ...message, id }, options, { [WireHeader.ReplyTo]: replyTopic, [WireHeader.CorrelationId]: id });
    } catch (error) {
      inbox.cancel(id, error);
    }
    return reply;
  }

  /** Answers a message sent with {@link Broker.request}. Throws `InvalidMessageError` when it asked for no reply. */
  async reply<T>(request: Message, message: PublishInput<T>): Promise<PublishReceipt> {
    const replyTo = request.headers[WireHeader.ReplyTo];
    const correlationId = request.headers[WireHeader.CorrelationId] ?? request.id;
    if (!replyTo) throw new InvalidMessageError(`Message ${request.id} on '${request.topic}' did not ask for a reply (no ${WireHeader.ReplyTo} header).`);
    return this.#publish(replyTo, message, {}, { [WireHeader.CorrelationId]: correlationId });
  }

  async #publish<T>(topic: string, message: PublishInput<T>, options: PublishOptions, internalHeaders: Record<string, string> | undefined): Promise<PublishReceipt> {
    this.#assertReady('publish');
    validateName('topic', topic);
    if (message === null || typeof message !== 'object' || !('body' in message)) {
      throw new InvalidMessageError('publish(topic, message): message must be an object with a body, e.g. { body: { orderId: 1 } }.');
    }
    if (message.id !== undefined && (typeof message.id !== 'string' || message.id.length === 0)) {
      throw new InvalidMessageError('message.id must be a non-empty string when given.');
    }
    if (message.key !== undefined && typeof message.key !== 'string') throw new InvalidMessageError('message.key must be a string when given.');
    const delayMs = options.delayMs ?? 0;
    if (!(delayMs >= 0) || !Number.isFinite(delayMs)) throw new InvalidOptionsError(`delayMs must be a finite number ≥ 0, got ${delayMs}.`);
    if (delayMs > 0 && (this.#adapter.features.delayedPublish === false || this.#adapter.features.delay === 'none')) {
      throw new UnsupportedFeatureError(this.#adapter.name, 'delayed publish');
    }

    const id = message.id ?? newMessageId();
    const headers = normaliseHeaders(message.headers);
    if (internalHeaders) Object.assign(headers, internalHeaders);
    const wire = new OutgoingMessage(id, topic, message.key, headers, message.body, Date.now(), delayMs);
    const span = this.#tracing?.active ? this.#tracing.startPublish(topic, id, headers) : undefined;
    const sent = options.ensure ? this.#ensure(topic, undefined, options.createOptions).then(() => this.#adapter.send(wire)) : this.#adapter.send(wire);
    this.#publishesUnderWay++;
    try {
      await sent;
      if (span) this.#tracing!.end(span);
    } catch (error) {
      if (span) this.#tracing!.end(span, error);
      throw error;
    } finally {
      if (--this.#publishesUnderWay === 0) this.#publishesSettled?.();
    }
    this.#metrics.published(topic);
    return { id };
  }

  /**
   * Joins `groupId` on `topic` and hands each message to `handler`. Every group gets every message;
   * inside a group each message goes to one consumer. The group id is mandatory.
   */
  async subscribe<T = unknown>(topic: string, handler: Handler<T>, groupId: string, options: SubscribeOptions<T> = {}): Promise<Subscription> {
    this.#assertReady('subscribe');
    validateName('topic', topic);
    if (groupId === undefined || groupId === null || groupId === '') throw new MissingGroupError(topic);
    validateName('group', groupId);
    if (typeof handler !== 'function') throw new InvalidOptionsError('subscribe(topic, handler, groupId): handler must be a function.');
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidOptionsError(`concurrency must be an integer ≥ 1, got ${concurrency}.`);
    const retry = resolveRetryPolicy({ ...this.#retryDefaults, ...options.retry });
    const deadLetterTopic = validateName('topic', options.deadLetter?.topic ?? deadLetterTopicOf(topic, groupId));
    const ordered = options.ordering === 'key';
    const ensure = options.ensure ?? false;

    if (ensure) {
      await this.#ensure(topic, groupId, options.createOptions, retry);
      await this.#ensure(deadLetterTopic, DEAD_LETTER_GROUP);
    }
    const pipeline = new ConsumePipeline<T>({
      adapter: this.#adapter,
      topic,
      group: groupId,
      handler,
      retry,
      deadLetterTopic,
      schema: options.schema,
      idempotency: options.idempotency,
      invalidJson: options.invalidJson ?? 'dead-letter',
      retryInPlace: ordered,
      logger: this.#logger,
      metrics: this.#metrics,
      tracing: this.#tracing,
    });
    const runner = new SubscriptionRunner(topic, groupId, pipeline, concurrency, ordered, (closed) => this.#subscriptions.delete(closed));
    const consumption = await this.#adapter.consume(
      { topic, group: groupId, ensure, prefetch: concurrency, ordered, createOptions: options.createOptions, retry },
      runner.deliver,
    );
    runner.attach(consumption);
    this.#subscriptions.add(runner);
    return runner;
  }

  /**
   * Graceful shutdown: closes every subscription (each drains its in-flight messages for up to
   * `drainTimeoutMs`), waits for publishes under way, then closes the adapter. Idempotent.
   */
  close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'closing';
      this.#replies?.closeAll();
      await Promise.allSettled([...this.#subscriptions].map((subscription) => subscription.close(options)));
      if (this.#publishesUnderWay > 0) await new Promise<void>((resolve) => (this.#publishesSettled = resolve));
      await this.#adapter.close();
      this.#state = 'closed';
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #ensure(topic: string, group: string | undefined, createOptions?: Readonly<Record<string, unknown>>, retry?: RetryPolicy): Promise<void> {
    const cacheKey = `${topic}\u0000${group ?? ''}`;
    if (this.#ensured.has(cacheKey)) return;
    await this.#adapter.ensure({ topic, group, createOptions, retry: retry && { maxAttempts: retry.maxAttempts, maxDelayMs: retry.maxDelayMs } });
    this.#ensured.add(cacheKey);
  }

  #assertReady(operation: string): void {
    if (this.#state === 'ready') return;
    if (this.#state === 'closing' || this.#state === 'closed') throw new ClosedError('This broker');
    throw new NotInitializedError(operation);
  }
}

const TEXT_ENCODER = new TextEncoder();

/** A {@link WireMessage} whose payload is encoded once, on first read. */
class OutgoingMessage implements WireMessage {
  readonly #json: string | undefined;
  #payload: Uint8Array | undefined;

  constructor(
    readonly id: string,
    readonly topic: string,
    readonly key: string | undefined,
    readonly headers: Record<string, string>,
    readonly body: unknown,
    readonly publishedAt: number,
    readonly delayMs: number,
  ) {
    if (body instanceof Uint8Array) {
      this.#payload = body;
      headers[WireHeader.ContentType] ??= BINARY_CONTENT_TYPE;
    } else {
      let json: string | undefined;
      try {
        json = JSON.stringify(body) as string | undefined;
      } catch {
        encodeBody(body);
      }
      if (json === undefined) encodeBody(body);
      this.#json = json;
      headers[WireHeader.ContentType] ??= JSON_CONTENT_TYPE;
    }
    headers[WireHeader.Id] = id;
    headers[WireHeader.PublishedAt] = String(publishedAt);
  }

  get payload(): Uint8Array {
    return (this.#payload ??= TEXT_ENCODER.encode(this.#json));
  }

  get payloadText(): string | undefined {
    return this.#json;
  }
}
