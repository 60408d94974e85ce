import type { StandardSchemaV1 } from '@standard-schema/spec';
import { newMessageId } from '../newMessageId.js';
import type { Adapter, DeadLetterRecord, Delivery } from '../contract.js';
import { DecodeError, redact, SchemaValidationError } from '../errors.js';
import type { Logger } from '../Logger.js';
import type { Handler, Verdict } from '../message.js';
import { ACK, ReceivedMessage, RETRY, type EarlySettler } from './ReceivedMessage.js';
import { BINARY_CONTENT_TYPE, decodePayload, encodeBody, payloadBytes, userHeaders, WireHeader } from '../wire.js';
import type { IdempotencyStore } from './IdempotencyStore.js';
import { backoffDelay, type RetryPolicy } from './retry.js';
import { otelContext, type MetricsSink, type Outcome, type Tracing } from './Telemetry.js';

/** Idempotent-consumer settings. */
export interface IdempotencyOptions {
  /** Where processed ids are remembered. */
  readonly store: IdempotencyStore;
  /** How long a processed id is remembered. Default 24 h. */
  readonly ttlMs?: number;
  /** How long a claim lasts while the handler runs. Default 5 min. */
  readonly leaseMs?: number;
}

/** Everything the pipeline needs to process one group's deliveries. */
export interface PipelineSettings<T> {
  /** Where dead letters are published when a delivery cannot dead-letter itself (no `Delivery.deadLetter`). */
  readonly adapter: Pick<Adapter, 'send'>;
  readonly topic: string;
  readonly group: string;
  readonly handler: Handler<T>;
  readonly retry: RetryPolicy;
  readonly deadLetterTopic: string;
  readonly schema: StandardSchemaV1<unknown, T> | undefined;
  readonly idempotency: IdempotencyOptions | undefined;
  readonly invalidJson: 'dead-letter' | 'deliver-raw';
  /** Retry in place (keeps per-key order) instead of handing the message back to the broker. */
  readonly retryInPlace: boolean;
  readonly logger: Logger;
  readonly metrics: MetricsSink | undefined;
  readonly tracing: Tracing | undefined;
}

/** Settings of a {@link MessagePipeline}: a {@link ConsumePipeline}'s, plus how ids are minted. */
export interface MessagePipelineSettings<T> extends PipelineSettings<T> {
  /** Mints the id of a delivery that carries neither an `omniqueue-id` header nor a native id. */
  readonly newId: () => string;
}

/** One handler run: its verdict, the error it threw, and the settlement it started through `msg.ack()`/`msg.nack()`, if any. */
interface HandlerRun {
  readonly verdict: Verdict;
  readonly error: unknown;
  readonly earlyOutcome: Promise<Outcome> | undefined;
}

/** The run of a handler that returned nothing (or `ACK`) and did not settle through the message: the common case, shared. */
const ACKED_RUN: HandlerRun = Object.freeze({ verdict: ACK, error: undefined, earlyOutcome: undefined });

/** A process span and the context the handler runs in. */
type TracedRun = ReturnType<Tracing['startProcess']>;

/** Reason of a payload that could not be decoded; its dead letter is typed as bytes so any reader can open it. */
const DECODE_FAILED = 'decode-failed';
const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_IDEMPOTENCY_LEASE_MS = 5 * 60 * 1000;

/**
 * The consume pipeline: decode → idempotency → schema → handler → verdict → native settlement.
 * Every source (adapter subscription, Lambda record, Azure Functions message) runs its deliveries
 * through this one class, so retries, dead-lettering and telemetry behave the same everywhere.
 * `process` never rejects: every failure ends in a settlement, and a failed settlement is logged
 * and left to the broker's redelivery.
 *
 * Sources use {@link ConsumePipeline}, which mints UUIDv7 ids; a source whose deliveries always carry
 * an id (the Lambda SQS trigger: every record has its `messageId`) uses this class with its own
 * `newId`, so its bundle does not carry the UUID generator.
 */
export class MessagePipeline<T = unknown> implements EarlySettler {
  /** The metrics sink, unless it records nothing: then no timing is taken and no sink is called. */
  readonly #metrics: MetricsSink | undefined;
  /** The idempotency settings with their defaults applied, when a store is configured. */
  readonly #idempotency: Required<IdempotencyOptions> | undefined;

  constructor(private readonly settings: MessagePipelineSettings<T>) {
    this.#metrics = settings.metrics?.recording === false ? undefined : settings.metrics;
    const idempotency = settings.idempotency;
    this.#idempotency = idempotency && {
      store: idempotency.store,
      ttlMs: idempotency.ttlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
      leaseMs: idempotency.leaseMs ?? DEFAULT_IDEMPOTENCY_LEASE_MS,
    };
  }

  /** Processes one delivery to its settlement. */
  process(delivery: Delivery): Promise<void> {
    const metrics = this.#metrics;
    return metrics ? this.#processMeasured(delivery, metrics) : this.#process(delivery).then(ignoreOutcome, this.#settlementFailed);
  }

  async #processMeasured(delivery: Delivery, metrics: MetricsSink): Promise<void> {
    const { topic, group } = this.settings;
    const started = performance.now();
    metrics.inFlight(topic, group, 1);
    let outcome: Outcome = 'acked';
    try {
      outcome = await this.#process(delivery);
    } catch (error) {
      outcome = 'retried';
      this.#settlementFailed(error);
    } finally {
      metrics.inFlight(topic, group, -1);
      metrics.settled(topic, group, outcome, performance.now() - started);
    }
  }

  readonly #settlementFailed = (error: unknown): void => {
    this.settings.logger.error({ topic: this.settings.topic, group: this.settings.group, err: describe(error) }, 'settlement failed; the broker will redeliver');
  };

  async #process(delivery: Delivery): Promise<Outcome> {
    const { settings } = this;
    const headers = delivery.headers;
    const id = headers[WireHeader.Id] ?? delivery.nativeId ?? settings.newId();
    const contentType = headers[WireHeader.ContentType];
    let body: unknown;
    try {
      body = delivery.decoded ? delivery.decoded.value : decodePayload(delivery.payload, contentType);
    } catch (error) {
      if (settings.invalidJson === 'dead-letter' || !(error instanceof DecodeError)) {
        return this.#deadLetter(delivery, id, DECODE_FAILED, error, delivery.attempt);
      }
      body = delivery.payload;
    }

    const idempotency = this.#idempotency;
    const idempotencyKey = idempotency ? `${settings.topic}/${settings.group}/${id}` : undefined;
    if (idempotencyKey) {
      const claim = await idempotency!.store.claim(idempotencyKey, idempotency!.leaseMs);
      if (claim === 'done') {
        await delivery.ack();
        return 'duplicate';
      }
      if (claim === 'in-progress') {
        await delivery.nack(Math.min(settings.retry.maxDelayMs, idempotency!.leaseMs));
        return 'retried';
      }
    }

    if (settings.schema) {
      let result = settings.schema['~standard'].validate(body);
      if (result instanceof Promise) result = await result;
      if (result.issues) {
        if (idempotencyKey) await idempotency!.store.release(idempotencyKey);
        return this.#deadLetter(delivery, id, 'schema-validation-failed', new SchemaValidationError(result.issues), delivery.attempt);
      }
      body = result.value;
    }

    const publishedAtHeader = headers[WireHeader.PublishedAt];
    const publishedAt = new Date(publishedAtHeader ? Number(publishedAtHeader) : (delivery.timestamp ?? Date.now()));
    const visibleHeaders = userHeaders(headers);

    for (let attempt = delivery.attempt; ; attempt++) {
      let run = this.#run(delivery, id, body as T, visibleHeaders, publishedAt, contentType, attempt);
      if (run instanceof Promise) run = await run;
      const { verdict, error, earlyOutcome } = run;
      if (earlyOutcome) return await earlyOutcome;
      if (verdict.kind === 'ack') {
        await delivery.ack();
        if (idempotencyKey) await idempotency!.store.complete(idempotencyKey, idempotency!.ttlMs);
        return 'acked';
      }
      if (idempotencyKey) await idempotency!.store.release(idempotencyKey);
      if (verdict.kind === 'deadLetter') return this.#deadLetter(delivery, id, verdict.reason, error, attempt);
      if (attempt >= settings.retry.maxAttempts) return this.#deadLetter(delivery, id, 'max-attempts-exceeded', error, attempt);
      const delayMs = verdict.delayMs ?? backoffDelay(settings.retry, attempt);
      if (!settings.retryInPlace) {
        await delivery.nack(delayMs);
        return 'retried';
      }
      this.#metrics?.settled(settings.topic, settings.group, 'retried', 0);
      await sleep(delayMs);
      if (idempotencyKey) await idempotency!.store.claim(idempotencyKey, idempotency!.leaseMs);
    }
  }

  /**
   * Runs the handler once. The run is synchronous when the handler is, so a synchronous verdict
   * costs no promise; an asynchronous handler's run is a promise.
   */
  #run(
    delivery: Delivery,
    id: string,
    body: T,
    headers: Readonly<Record<string, string>>,
    publishedAt: Date,
    contentType: string | undefined,
    attempt: number,
  ): HandlerRun | Promise<HandlerRun> {
    const { settings } = this;
    const traced = settings.tracing?.active ? settings.tracing.startProcess(settings.topic, settings.group, id, attempt, delivery.headers) : undefined;
    const message = new ReceivedMessage<T>(
      id,
      settings.topic,
      settings.group,
      body,
      headers,
      delivery.key,
      attempt,
      publishedAt,
      contentType ?? 'application/json',
      delivery.raw,
      this,
      delivery,
    );
    let returned: ReturnType<Handler<T>>;
    try {
      returned = traced ? otelContext.with(traced.context, settings.handler, undefined, message) : settings.handler(message);
    } catch (thrown) {
      return this.#handlerFailed(message, traced, thrown);
    }
    if (isThenable(returned)) return this.#awaitHandler(message, traced, returned);
    return this.#handlerReturned(message, traced, returned);
  }

  async #awaitHandler(message: ReceivedMessage<T>, traced: TracedRun | undefined, pending: PromiseLike<Verdict | void>): Promise<HandlerRun> {
    let returned: Verdict | void;
    try {
      returned = await pending;
    } catch (thrown) {
      return this.#handlerFailed(message, traced, thrown);
    }
    return this.#handlerReturned(message, traced, returned);
  }

  #handlerReturned(message: ReceivedMessage<T>, traced: TracedRun | undefined, returned: Verdict | void): HandlerRun {
    const early = message.earlyVerdict;
    if (early && returned && returned !== early) {
      try {
        this.settings.logger.warn(
          { topic: this.settings.topic, group: this.settings.group, id: message.id, first: early.kind, second: returned.kind },
          'message settled twice; the returned verdict is ignored',
        );
      } catch (thrown) {
        return this.#handlerFailed(message, traced, thrown);
      }
    }
    if (traced) this.settings.tracing!.end(traced.span, undefined);
    const verdict = returned ?? ACK;
    const earlyOutcome = message.earlyOutcome;
    return verdict === ACK && !earlyOutcome ? ACKED_RUN : { verdict, error: undefined, earlyOutcome };
  }

  #handlerFailed(message: ReceivedMessage<T>, traced: TracedRun | undefined, thrown: unknown): HandlerRun {
    const { settings } = this;
    settings.logger.debug({ topic: settings.topic, group: settings.group, id: message.id, attempt: message.attempt, err: describe(thrown) }, 'handler failed');
    if (traced) settings.tracing!.end(traced.span, thrown);
    return { verdict: RETRY, error: thrown, earlyOutcome: message.earlyOutcome };
  }

  /** Settles a verdict given through `msg.ack()` / `msg.nack()` (never retried in place). */
  async settleEarly(delivery: Delivery, id: string, verdict: Verdict, error: unknown, attempt: number): Promise<Outcome> {
    if (verdict.kind === 'ack') {
      await delivery.ack();
      return 'acked';
    }
    if (verdict.kind === 'deadLetter') return this.#deadLetter(delivery, id, verdict.reason, error, attempt);
    if (attempt >= this.settings.retry.maxAttempts) return this.#deadLetter(delivery, id, 'max-attempts-exceeded', error, attempt);
    await delivery.nack(verdict.delayMs ?? backoffDelay(this.settings.retry, attempt));
    return 'retried';
  }

  /** Logs a second settlement of the same message, which is ignored. */
  warnSettledTwice(id: string, first: string, second: string): void {
    this.settings.logger.warn({ topic: this.settings.topic, group: this.settings.group, id, first, second }, 'message settled twice; the second settlement is ignored');
  }

  async #deadLetter(delivery: Delivery, id: string, reason: string, error: unknown, attempts: number): Promise<Outcome> {
    const { settings } = this;
    const errorText = error === undefined ? undefined : describe(error);
    const headers: Record<string, string> = {
      ...delivery.headers,
      [WireHeader.Id]: id,
      [WireHeader.DlqReason]: reason,
      [WireHeader.DlqAttempts]: String(attempts),
      [WireHeader.DlqTopic]: settings.topic,
      [WireHeader.DlqGroup]: settings.group,
      [WireHeader.DlqFailedAt]: new Date().toISOString(),
    };
    delete headers[WireHeader.Attempt];
    if (reason === DECODE_FAILED) {
      headers[WireHeader.DlqOriginalContentType] = delivery.headers[WireHeader.ContentType] ?? '';
      headers[WireHeader.ContentType] = BINARY_CONTENT_TYPE;
    }
    if (errorText !== undefined) headers[WireHeader.DlqError] = errorText.slice(0, 1024);
    const record: DeadLetterRecord = { reason, error: errorText, attempts, headers, topic: settings.deadLetterTopic };
    settings.logger.warn({ topic: settings.topic, group: settings.group, id, reason, attempts, err: errorText }, 'message dead-lettered');
    if (delivery.deadLetter) {
      await delivery.deadLetter(record);
      return 'dead-lettered';
    }
    const payload = delivery.decoded && isEmpty(delivery.payload) ? encodeBody(delivery.decoded.value).payload : payloadBytes(delivery.payload);
    try {
      await settings.adapter.send({
        id,
        topic: settings.deadLetterTopic,
        key: delivery.key,
        headers,
        payload,
        body: delivery.decoded?.value,
        publishedAt: Date.now(),
        delayMs: 0,
      });
    } catch (sendError) {
      settings.logger.error({ topic: settings.topic, group: settings.group, id, err: describe(sendError) }, 'dead-letter publish failed; message handed back for redelivery');
      await delivery.nack(backoffDelay(settings.retry, attempts));
      return 'retried';
    }
    await delivery.ack();
    return 'dead-lettered';
  }
}

/** The pipeline of adapter subscriptions and triggers: a {@link MessagePipeline} that gives an id-less delivery a new UUIDv7 ({@link newMessageId}). */
export class ConsumePipeline<T = unknown> extends MessagePipeline<T> {
  constructor(settings: PipelineSettings<T>) {
    super({ ...settings, newId: newMessageId });
  }
}

function ignoreOutcome(): void {}

function isEmpty(payload: Uint8Array | string): boolean {
  return payload.length === 0;
}

function isThenable(value: unknown): value is PromiseLike<Verdict | void> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Short, credential-free description of an error for logs and dead-letter headers. */
export function describe(error: unknown): string {
  return redact(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}
