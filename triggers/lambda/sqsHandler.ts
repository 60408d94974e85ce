/**
 * `sqsHandler(handler, options)`: the same OmniQueue handler as an AWS Lambda handler for SQS
 * events. Each record becomes a {@link Delivery} and runs through the runtime's
 * {@link MessagePipeline} — decode, idempotency, schema, tracing, metrics, retry policy and
 * dead-lettering are the worker's, not re-implemented here. Only settlement differs:
 *
 * | verdict | Lambda |
 * |---|---|
 * | ack | success (not listed) |
 * | nack / throw | `batchItemFailures` |
 * | nack with a delay | ChangeMessageVisibility (seconds, rounded up, ≤ 12 h), then `batchItemFailures` |
 * | deadLetter / max attempts | SendMessage to the group's DLQ, then success |
 *
 * This module imports no AWS SDK: `@aws-sdk/client-sqs` is loaded lazily, the first time a record
 * needs ChangeMessageVisibility or a dead-letter send.
 *
 * @packageDocumentation
 */
import { decodeSqsMessage, encodeSqsMessage, payloadBytes, type ReceivedAttribute } from '../../adapters/sqs/codec.js';
import { FIFO_SUFFIX, queueNameOf } from '../../adapters/sqs/names.js';
import { deadLetterTopicOf } from '../../runtime/deadLetterTopicOf.js';
import type { DeadLetterRecord, Delivery } from '../../runtime/contract.js';
import { ConfigError, FullBatchFailureError, InvalidOptionsError, UnsupportedFeatureError } from '../../runtime/errors.js';
import type { Handler } from '../../runtime/message.js';
import { describe, MessagePipeline, type PipelineSettings } from '../../runtime/pipeline/ConsumePipeline.js';
import { resolveRetryPolicy } from '../../runtime/pipeline/retry.js';
import { pipelineServices, type HandlerPipelineOptions } from '../../runtime/pipeline/pipelineServices.js';
import { WireHeader } from '../../runtime/wire.js';
import type { LambdaContext, SqsBatchResponse, SqsEvent, SqsEventRecord } from './types.js';

/** Settings of the SQS client the trigger creates lazily (defaults: the Lambda environment's). */
export interface SqsClientSettings {
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

/** Options of {@link sqsHandler}. */
export interface SqsHandlerOptions<T = unknown> extends HandlerPipelineOptions<T> {
  /** Topic name the handler sees (`msg.topic`). Default: the source queue's name. */
  readonly topic?: string;
  /** Group name the handler sees (`msg.group`). Default: the source queue's name. */
  readonly group?: string;
  /** Records of a standard queue handled at once. Default 10. FIFO queues are handled in order. */
  readonly concurrency?: number;
  /**
   * FIFO: on a failure, fail only the rest of that message group (other groups continue), as
   * Powertools' `skipGroupOnError`. `false`: fail every record after the first failure. Default true.
   */
  readonly skipGroupOnError?: boolean;
  /** Records not finished when less than this many ms of the invocation remain are reported as failed. Default 2000. */
  readonly timeoutMarginMs?: number;
  /** Throw when every record failed (Lambda then backs off). Default false: return every id. */
  readonly throwOnFullBatchFailure?: boolean;
  /**
   * Apply a nack's delay with ChangeMessageVisibility (needs the SDK and `sqs:ChangeMessageVisibility`).
   * `false`: a failed record comes back after the queue's visibility timeout. Default true.
   */
  readonly changeVisibility?: boolean;
  /** Where dead letters go. Default: the source queue's redrive policy target (its DLQ). */
  readonly deadLetterQueueUrl?: string;
  /** Settings of the lazily created SQS client. */
  readonly sqs?: SqsClientSettings;
}

/** The SDK surface the trigger uses, loaded on first need. */
interface SqsApi {
  readonly client: { send(command: unknown): Promise<unknown> };
  readonly sdk: typeof import('@aws-sdk/client-sqs');
}

/** How a record ended. */
const RecordOutcome = { Success: 'success', Failure: 'failure' } as const;
type RecordOutcome = (typeof RecordOutcome)[keyof typeof RecordOutcome];

const MAX_VISIBILITY_SECONDS = 43_200;
const DEFAULT_CONCURRENCY = 10;
const DEFAULT_TIMEOUT_MARGIN_MS = 2_000;

export { FullBatchFailureError };

/**
 * Wraps an OmniQueue handler as a Lambda handler for SQS events that answers with
 * `batchItemFailures` (turn on `ReportBatchItemFailures` on the event source mapping).
 *
 * ```ts
 * export const handler = sqsHandler(billing, { retry: { maxAttempts: 5 } });
 * ```
 */
export function sqsHandler<T = unknown>(handler: Handler<T>, options: SqsHandlerOptions<T> = {}): (event: SqsEvent, context?: LambdaContext) => Promise<SqsBatchResponse> {
  if (typeof handler !== 'function') throw new InvalidOptionsError('sqsHandler(handler, options): handler must be a function.');
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidOptionsError(`concurrency must be an integer ≥ 1, got ${concurrency}.`);
  const retry = resolveRetryPolicy(options.retry);
  const { logger, metrics, tracing } = pipelineServices(options, 'aws_sqs');
  const marginMs = options.timeoutMarginMs ?? DEFAULT_TIMEOUT_MARGIN_MS;
  const pipelines = new Map<string, MessagePipeline<T>>();
  const dlqUrls = new Map<string, Promise<string>>();
  let api: Promise<SqsApi> | undefined;

  const sqsApi = (): Promise<SqsApi> =>
    (api ??= import('@aws-sdk/client-sqs').then((sdk) => {
      const { region, endpoint, credentials } = options.sqs ?? {};
      const client = new sdk.SQSClient({ ...(region && { region }), ...(endpoint && { endpoint }), ...(credentials && { credentials: { ...credentials } }) });
      return { sdk, client: client as unknown as SqsApi['client'] };
    }));

  const pipelineFor = (sourceArn: string): MessagePipeline<T> => {
    let pipeline = pipelines.get(sourceArn);
    if (!pipeline) {
      const queueName = queueNameOf(sourceArn);
      const topic = options.topic ?? stripFifo(queueName);
      const group = options.group ?? stripFifo(queueName);
      pipeline = new MessagePipeline<T>({
        adapter: NO_ADAPTER,
        // Every record carries its SQS messageId, the delivery's native id, so no id is ever minted
        // here; a random UUID (Node's global Web Crypto, nothing to import) keeps the contract.
        newId: () => crypto.randomUUID(),
        topic,
        group,
        handler,
        retry,
        deadLetterTopic: deadLetterTopicOf(topic, group),
        schema: options.schema,
        idempotency: options.idempotency,
        invalidJson: options.invalidJson ?? 'dead-letter',
        retryInPlace: false,
        logger,
        metrics,
        tracing,
      });
      pipelines.set(sourceArn, pipeline);
    }
    return pipeline;
  };

  const queueUrlOf = async (arn: string): Promise<string> => {
    const { sdk, client } = await sqsApi();
    const [, , , , account, name] = arn.split(':');
    const result = (await client.send(new sdk.GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))) as { QueueUrl?: string };
    if (!result.QueueUrl) throw new ConfigError(`No queue URL for ${arn}.`);
    return result.QueueUrl;
  };

  const deadLetterQueueUrl = (sourceArn: string): Promise<string> => {
    if (options.deadLetterQueueUrl) return Promise.resolve(options.deadLetterQueueUrl);
    let url = dlqUrls.get(sourceArn);
    if (!url) {
      url = (async () => {
        const { sdk, client } = await sqsApi();
        const source = await queueUrlOf(sourceArn);
        const result = (await client.send(new sdk.GetQueueAttributesCommand({ QueueUrl: source, AttributeNames: ['RedrivePolicy'] }))) as { Attributes?: Record<string, string> };
        const policy = result.Attributes?.RedrivePolicy;
        const target = policy ? (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn : undefined;
        if (!target) throw new ConfigError(`Queue ${queueNameOf(sourceArn)} has no redrive policy: give it a DLQ or set sqsHandler's deadLetterQueueUrl.`);
        return queueUrlOf(target);
      })();
      url.catch(() => dlqUrls.delete(sourceArn));
      dlqUrls.set(sourceArn, url);
    }
    return url;
  };

  /** Runs one record through the pipeline; resolves with how it ended. */
  const processRecord = async (record: SqsEventRecord): Promise<RecordOutcome> => {
    let outcome: RecordOutcome | undefined;
    const pipeline = pipelineFor(record.eventSourceARN);
    const fifo = record.eventSourceARN.endsWith(FIFO_SUFFIX);
    const decoded = decodeRecord(record);
    const delivery: Delivery = {
      ...decoded,
      raw: record,
      ack: async () => {
        outcome ??= RecordOutcome.Success;
      },
      nack: async (delayMs: number) => {
        if (outcome) return;
        outcome = RecordOutcome.Failure;
        if (delayMs <= 0 || options.changeVisibility === false) return;
        try {
          const { sdk, client } = await sqsApi();
          const visibility = Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(delayMs / 1000));
          await client.send(new sdk.ChangeMessageVisibilityCommand({ QueueUrl: await queueUrlOf(record.eventSourceARN), ReceiptHandle: record.receiptHandle, VisibilityTimeout: visibility }));
        } catch (error) {
          // Still reported as failed: it comes back after the queue's visibility timeout instead.
          logger.warn({ messageId: record.messageId, err: describe(error) }, 'ChangeMessageVisibility failed; the record returns after the visibility timeout');
        }
      },
      deadLetter: async (deadLetterRecord: DeadLetterRecord) => {
        if (outcome) return;
        try {
          const { sdk, client } = await sqsApi();
          const url = await deadLetterQueueUrl(record.eventSourceARN);
          const encoded = encodeSqsMessage(deadLetterRecord.headers, payloadBytes(decoded.payload), decoded.key, !fifo);
          await client.send(
            new sdk.SendMessageCommand({
              QueueUrl: url,
              MessageBody: encoded.body,
              MessageAttributes: encoded.attributes,
              ...(url.endsWith(FIFO_SUFFIX) ? { MessageGroupId: decoded.key ?? record.messageId, MessageDeduplicationId: `${record.messageId}-dlq` } : {}),
            }),
          );
          outcome = RecordOutcome.Success;
        } catch (error) {
          outcome = RecordOutcome.Failure;
          logger.error({ messageId: record.messageId, err: describe(error) }, 'dead-letter send failed; the record is reported as failed');
        }
      },
    };
    await pipeline.process(delivery);
    return outcome ?? RecordOutcome.Failure;
  };

  return async (event: SqsEvent, context?: LambdaContext): Promise<SqsBatchResponse> => {
    const records = event?.Records ?? [];
    const outcomes = new Map<string, RecordOutcome>();
    const timeLeft = (): number => (context ? context.getRemainingTimeInMillis() - marginMs : Number.POSITIVE_INFINITY);
    let expired = false;
    const mayStart = (): boolean => !expired && timeLeft() > 0;
    const run = async (record: SqsEventRecord): Promise<RecordOutcome> => {
      const outcome = await processRecord(record);
      outcomes.set(record.messageId, outcome);
      return outcome;
    };

    const work = isFifo(records) ? runFifo(records, run, mayStart, options.skipGroupOnError ?? true) : runConcurrent(records, run, mayStart, concurrency);
    let timer: NodeJS.Timeout | undefined;
    const budget = timeLeft();
    if (Number.isFinite(budget)) {
      await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, budget))))]);
      clearTimeout(timer);
      expired = true;
    } else {
      await work;
    }

    const batchItemFailures = records.filter((record) => outcomes.get(record.messageId) !== RecordOutcome.Success).map((record) => ({ itemIdentifier: record.messageId }));
    if (batchItemFailures.length > 0 && batchItemFailures.length === records.length && options.throwOnFullBatchFailure) {
      throw new FullBatchFailureError(batchItemFailures.map((failure) => failure.itemIdentifier));
    }
    return { batchItemFailures };
  };
}

/** Standard queues: up to `concurrency` records at once; records not started in time stay failed. */
async function runConcurrent(
  records: readonly SqsEventRecord[],
  run: (record: SqsEventRecord) => Promise<RecordOutcome>,
  mayStart: () => boolean,
  concurrency: number,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < records.length && mayStart()) await run(records[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, records.length) }, lane));
}

/** FIFO: in order; after a failure the rest of that message group (or of the batch) fails unprocessed. */
async function runFifo(
  records: readonly SqsEventRecord[],
  run: (record: SqsEventRecord) => Promise<RecordOutcome>,
  mayStart: () => boolean,
  skipGroupOnError: boolean,
): Promise<void> {
  const failedGroups = new Set<string | undefined>();
  for (const record of records) {
    if (!mayStart()) return;
    const group = record.attributes.MessageGroupId;
    if (skipGroupOnError ? failedGroups.has(group) : failedGroups.size > 0) continue;
    if ((await run(record)) === RecordOutcome.Failure) failedGroups.add(group);
  }
}

function isFifo(records: readonly SqsEventRecord[]): boolean {
  return records.length > 0 && records[0]!.eventSourceARN.endsWith(FIFO_SUFFIX);
}

function stripFifo(name: string): string {
  return name.endsWith(FIFO_SUFFIX) ? name.slice(0, -FIFO_SUFFIX.length) : name;
}

/** The SNS notification envelope of a non-raw SNS → SQS subscription. */
interface SnsEnvelope {
  readonly Type: string;
  readonly MessageId: string;
  readonly TopicArn: string;
  readonly Message: string;
  readonly Timestamp?: string;
  readonly MessageAttributes?: Record<string, { readonly Type: string; readonly Value: string }>;
}

/** The delivery fields of a record: SNS envelope unwrapped, attributes unpacked, trace header mapped. */
export function decodeRecord(record: SqsEventRecord): Pick<Delivery, 'payload' | 'headers' | 'key' | 'attempt' | 'nativeId' | 'timestamp'> & { payload: Uint8Array | string } {
  const envelope = snsEnvelope(record.body);
  let body = record.body;
  const attributes: Record<string, ReceivedAttribute> = {};
  if (envelope) {
    body = envelope.Message;
    for (const [name, value] of Object.entries(envelope.MessageAttributes ?? {})) {
      attributes[name] = value.Type === 'Binary' ? { type: value.Type, binaryBase64: value.Value } : { type: value.Type, stringValue: value.Value };
    }
  } else {
    for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
      attributes[name] = { type: value.dataType, stringValue: value.stringValue, binaryBase64: value.binaryValue };
    }
  }
  const decoded = decodeSqsMessage(body, attributes);
  const headers = decoded.headers;
  if (headers[WireHeader.TraceParent] === undefined && record.attributes.AWSTraceHeader) {
    const traceparent = xrayToTraceparent(record.attributes.AWSTraceHeader);
    if (traceparent) headers[WireHeader.TraceParent] = traceparent;
  }
  const sent = Number(record.attributes.SentTimestamp);
  return {
    payload: decoded.payload,
    headers,
    key: record.attributes.MessageGroupId ?? decoded.key,
    attempt: Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1),
    nativeId: record.messageId,
    timestamp: Number.isFinite(sent) && sent > 0 ? sent : envelope?.Timestamp ? Date.parse(envelope.Timestamp) : undefined,
  };
}

function snsEnvelope(body: string): SnsEnvelope | undefined {
  if (!body.startsWith('{') || !body.includes('"TopicArn"')) return undefined;
  try {
    const value = JSON.parse(body) as Partial<SnsEnvelope>;
    return value.Type === 'Notification' && typeof value.TopicArn === 'string' && typeof value.Message === 'string' && typeof value.MessageId === 'string'
      ? (value as SnsEnvelope)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * X-Ray `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1` → W3C
 * `00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01`.
 */
export function xrayToTraceparent(header: string): string | undefined {
  const parts = Object.fromEntries(header.split(';').map((part) => part.split('=', 2) as [string, string]));
  const root = /^1-([0-9a-f]{8})-([0-9a-f]{24})$/.exec(parts.Root ?? '');
  const parent = /^[0-9a-f]{16}$/.exec(parts.Parent ?? '');
  if (!root || !parent) return undefined;
  return `00-${root[1]}${root[2]}-${parent[0]}-${parts.Sampled === '1' ? '01' : '00'}`;
}

/** The pipeline's dead-letter publisher: unused, since every Lambda delivery settles dead letters itself. */
const NO_ADAPTER: PipelineSettings<unknown>['adapter'] = {
  send: () => Promise.reject(new UnsupportedFeatureError('lambda-sqs', 'publishing from the trigger pipeline')),
};
