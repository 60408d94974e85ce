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
  constructor(private readonly settings: MessagePipelineSettings<T>) {}

  /** Processes one delivery to its settlement. */
  async process(delivery: Delivery): Promise<void> {
    const { settings } = this;
    const started = performance.now();
    settings.metrics?.inFlight(settings.topic, settings.group, 1);
    let outcome: Outcome = 'acked';
    try {
      outcome = await this.#process(delivery);
    } catch (error) {
      outcome = 'retried';
      settings.logger.error({ topic: settings.topic, group: settings.group, err: describe(error) }, 'settlement failed; the broker will redeliver');
    } finally {
      settings.metrics?.inFlight(settings.topic, settings.group, -1);
      settings.metrics?.settled(settings.topic, settings.group, outcome, performance.now() - started);
    }
  }

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

    const idempotencyKey = settings.idempotency ? `${settings.topic}/${settings.group}/${id}` : undefined;
    if (idempotencyKey) {
      const claim = await settings.idempotency!.store.claim(idempotencyKey, settings.idempotency!.leaseMs ?? DEFAULT_IDEMPOTENCY_LEASE_MS);
      if (claim === 'done') {
        await delivery.ack();
        return 'duplicate';
      }
      if (claim === 'in-progress') {
        await delivery.nack(Math.min(settings.retry.maxDelayMs, settings.idempotency!.leaseMs ?? DEFAULT_IDEMPOTENCY_LEASE_MS));
        return 'retried';
      }
    }

    if (settings.schema) {
      let result = settings.schema['~standard'].validate(body);
      if (result instanceof Promise) result = await result;
      if (result.issues) {
        if (idempotencyKey) await settings.idempotency!.store.release(idempotencyKey);
        return this.#deadLetter(delivery, id, 'schema-validation-failed', new SchemaValidationError(result.issues), delivery.attempt);
      }
      body = result.value;
    }

    const publishedAtHeader = headers[WireHeader.PublishedAt];
    const publishedAt = new Date(publishedAtHeader ? Number(publishedAtHeader) : (delivery.timestamp ?? Date.now()));
    const visibleHeaders = userHeaders(headers);

    for (let attempt = delivery.attempt; ; attempt++) {
      const { verdict, error, settled } = await this.#run(delivery, id, body as T, visibleHeaders, publishedAt, contentType, attempt);
      if (settled) return settled;
      if (verdict.kind === 'ack') {
        await delivery.ack();
        if (idempotencyKey) await settings.idempotency!.store.complete(idempotencyKey, settings.idempotency!.ttlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS);
        return 'acked';
      }
      if (idempotencyKey) await settings.idempotency!.store.release(idempotencyKey);
      if (verdict.kind === 'deadLetter') return this.#deadLetter(delivery, id, verdict.reason, error, attempt);
      if (attempt >= settings.retry.maxAttempts) return this.#deadLetter(delivery, id, 'max-attempts-exceeded', error, attempt);
      const delayMs = verdict.delayMs ?? backoffDelay(settings.retry, attempt);
      if (!settings.retryInPlace) {
        await delivery.nack(delayMs);
        return 'retried';
      }
      settings.metrics?.settled(settings.topic, settings.group, 'retried', 0);
      await sleep(delayMs);
      if (idempotencyKey) await settings.idempotency!.store.claim(idempotencyKey, settings.idempotency!.leaseMs ?? DEFAULT_IDEMPOTENCY_LEASE_MS);
    }
  }

  /** Runs the handler once; `settled` is set when the handler settled through `msg.ack()`/`msg.nack()`. */
  async #run(
    delivery: Delivery,
    id: string,
    body: T,
    headers: Readonly<Record<string, string>>,
    publishedAt: Date,
    contentType: string | undefined,
    attempt: number,
  ): Promise<{ verdict: Verdict; error: unknown; settled?: Outcome }> {
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

    let verdict: Verdict;
    let error: unknown;
    try {
      let returned = traced ? otelContext.with(traced.context, settings.handler, undefined, message) : settings.handler(message);
      // A synchronous handler's verdict needs no extra turn of the event loop.
      if (isThenable(returned)) returned = await returned;
      verdict = returned ?? ACK;
      const early = message.earlyVerdict;
      if (early && returned && returned !== early) {
        settings.logger.warn({ topic: settings.topic, group: settings.group, id, first: early.kind, second: returned.kind }, 'message settled twice; the returned verdict is ignored');
      }
    } catch (thrown) {
      error = thrown;
      verdict = RETRY;
      settings.logger.debug({ topic: settings.topic, group: settings.group, id, attempt, err: describe(thrown) }, 'handler failed');
    }
    if (traced) settings.tracing!.end(traced.span, error);
    const earlyOutcome = message.earlyOutcome;
    if (earlyOutcome) return { verdict: message.earlyVerdict!, error, settled: await earlyOutcome };
    return { verdict, error };
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
