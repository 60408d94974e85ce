/**
 * A local stand-in for Lambda's SQS event source mapping: polls a queue (on an emulator or real
 * SQS), builds real SQS events, invokes a handler — a function or a built bundle's module path —
 * and settles the way the mapping does with `ReportBatchItemFailures`: records listed in
 * `batchItemFailures` stay in the queue (back after their visibility timeout), the others are
 * deleted; a thrown error or an invalid response fails the whole batch.
 *
 * Unlike `sqsHandler`, this module loads `@aws-sdk/client-sqs`: it is a development tool, exported
 * separately so the function bundle never includes it.
 *
 * @packageDocumentation
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message as SqsMessage,
} from '@aws-sdk/client-sqs';
import { createHash, randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { InvalidOptionsError } from '../../runtime/errors.js';
import type { LambdaContext, SqsBatchResponse, SqsEvent, SqsEventMessageAttribute, SqsEventRecord } from './types.js';

/** A Lambda handler as the runner invokes it (the response is validated like Lambda does). */
export type InvokableHandler = (event: SqsEvent, context: LambdaContext) => Promise<unknown> | unknown;

/** Options of {@link LocalRunner}. */
export interface LocalRunnerOptions {
  /** The queue to poll: a URL, or a name resolved with GetQueueUrl. */
  readonly queue: string;
  /** The function: a handler, or the path of a module (a built bundle) exporting it. */
  readonly handler: InvokableHandler | string;
  /** Export name when `handler` is a module path. Default `handler`. */
  readonly exportName?: string;
  /** Records per invocation, like the mapping's BatchSize. Default 10. */
  readonly batchSize?: number;
  /** MaximumBatchingWindowInSeconds, in ms: wait up to this long to fill a batch. Default 0. */
  readonly maximumBatchingWindowMs?: number;
  /** The function's timeout: `context.getRemainingTimeInMillis()` counts down from it. Default 30 s. */
  readonly functionTimeoutMs?: number;
  /** FunctionResponseTypes ReportBatchItemFailures. Default true. */
  readonly reportBatchItemFailures?: boolean;
  /** Invocations at once (the mapping's MaximumConcurrency). Default 1. */
  readonly maximumConcurrency?: number;
  /** Long-poll wait, 0–20 s. Default 20 (aborted by stop()). */
  readonly waitTimeSeconds?: number;
  /** Function name in the context. Default `omniqueue-local`. */
  readonly functionName?: string;
  /** SQS client settings (endpoint of the emulator…). */
  readonly sqs?: { readonly region?: string; readonly endpoint?: string; readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string } };
  /** Called after each invocation with the event and what the function answered (or threw). */
  readonly onInvoke?: (invocation: Invocation) => void;
}

/** One invocation, for observers and tests. */
export interface Invocation {
  readonly event: SqsEvent;
  readonly response: unknown;
  readonly error: unknown;
  /** Message ids the runner deleted. */
  readonly deleted: readonly string[];
  /** Message ids left in the queue. */
  readonly failed: readonly string[];
}

/** The local event source mapping. `start()` it, `stop()` it. */
export class LocalRunner {
  readonly #options: LocalRunnerOptions;
  readonly #sqs: SQSClient;
  readonly #aborts = new Set<AbortController>();
  readonly #loops: Promise<void>[] = [];
  #queueUrl = '';
  #queueArn = '';
  #handler: InvokableHandler | undefined;
  #stopped = false;
  #invocations = 0;
  #active = 0;

  constructor(options: LocalRunnerOptions) {
    const batchSize = options.batchSize ?? 10;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new InvalidOptionsError(`batchSize must be an integer 1–10000, got ${batchSize}.`);
    this.#options = options;
    const settings = options.sqs ?? {};
    this.#sqs = new SQSClient({
      ...(settings.region ? { region: settings.region } : {}),
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.credentials ? { credentials: { ...settings.credentials } } : {}),
    });
  }

  /** Invocations made so far. */
  get invocations(): number {
    return this.#invocations;
  }

  /** Invocations running right now. */
  get active(): number {
    return this.#active;
  }

  /** Resolves the queue and the handler, then starts polling. */
  async start(): Promise<this> {
    const { queue } = this.#options;
    this.#queueUrl = /^https?:\/\//.test(queue) ? queue : (await this.#sqs.send(new GetQueueUrlCommand({ QueueName: queue }))).QueueUrl!;
    this.#queueArn = (await this.#sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.#queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    this.#handler = await loadHandler(this.#options.handler, this.#options.exportName ?? 'handler');
    for (let i = 0; i < (this.#options.maximumConcurrency ?? 1); i++) this.#loops.push(this.#loop());
    return this;
  }

  /** Stops polling (aborting long polls) and waits for invocations under way. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const abort of this.#aborts) abort.abort();
    await Promise.allSettled(this.#loops);
    this.#sqs.destroy();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      let messages: SqsMessage[];
      try {
        messages = await this.#collectBatch();
      } catch {
        if (this.#stopped) return;
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (messages.length === 0) continue;
      if (this.#stopped) {
        await this.#release(messages);
        return;
      }
      await this.#invoke(messages);
    }
  }

  /** Receives until the batch is full or the batching window has passed (at least one poll). */
  async #collectBatch(): Promise<SqsMessage[]> {
    const batchSize = this.#options.batchSize ?? 10;
    const windowMs = this.#options.maximumBatchingWindowMs ?? 0;
    const deadline = Date.now() + windowMs;
    const batch: SqsMessage[] = [];
    do {
      const remaining = deadline - Date.now();
      const wait = batch.length === 0 ? (this.#options.waitTimeSeconds ?? 20) : Math.max(0, Math.min(20, Math.floor(remaining / 1000)));
      const abort = new AbortController();
      this.#aborts.add(abort);
      try {
        const result = await this.#sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#queueUrl,
            MaxNumberOfMessages: Math.min(10, batchSize - batch.length),
            WaitTimeSeconds: wait,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['All'],
          }),
          { abortSignal: abort.signal },
        );
        batch.push(...(result.Messages ?? []));
      } finally {
        this.#aborts.delete(abort);
      }
      if (batch.length === 0 && this.#stopped) break;
    } while (batch.length > 0 && batch.length < batchSize && Date.now() < deadline && !this.#stopped);
    return batch;
  }

  async #invoke(messages: SqsMessage[]): Promise<void> {
    const event: SqsEvent = { Records: messages.map((message) => this.#record(message)) };
    const timeoutMs = this.#options.functionTimeoutMs ?? 30_000;
    const context = localContext(this.#options.functionName ?? 'omniqueue-local', timeoutMs);
    let response: unknown;
    let error: unknown;
    this.#invocations++;
    this.#active++;
    try {
      let timer: NodeJS.Timeout | undefined;
      response = await Promise.race([
        Promise.resolve(this.#handler!(event, context)),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`Task timed out after ${timeoutMs / 1000} seconds`)), timeoutMs))),
      ]).finally(() => clearTimeout(timer));
    } catch (thrown) {
      error = thrown;
    } finally {
      this.#active--;
    }
    const failedIds = error === undefined ? failuresOf(response, event, this.#options.reportBatchItemFailures ?? true) : new Set(event.Records.map((record) => record.messageId));
    const succeeded = messages.filter((message) => !failedIds.has(message.MessageId!));
    for (let i = 0; i < succeeded.length; i += 10) {
      const chunk = succeeded.slice(i, i + 10);
      await this.#sqs
        .send(new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: chunk.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })) }))
        .catch(() => undefined);
    }
    this.#options.onInvoke?.({ event, response, error, deleted: succeeded.map((message) => message.MessageId!), failed: [...failedIds] });
  }

  /** An SQS event record exactly as the event source mapping builds it. */
  #record(message: SqsMessage): SqsEventRecord {
    const attributes = message.Attributes ?? {};
    const messageAttributes: Record<string, SqsEventMessageAttribute> = {};
    for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
      messageAttributes[name] = {
        ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
        ...(value.BinaryValue !== undefined ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') } : {}),
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map((bytes) => Buffer.from(bytes).toString('base64')),
        dataType: value.DataType ?? 'String',
      };
    }
    return {
      messageId: message.MessageId!,
      receiptHandle: message.ReceiptHandle!,
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
        SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
        SenderId: attributes.SenderId ?? '000000000000',
        ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        ...pick(attributes, ['AWSTraceHeader', 'MessageGroupId', 'MessageDeduplicationId', 'SequenceNumber', 'DeadLetterQueueSourceArn']),
      },
      messageAttributes,
      md5OfBody: message.MD5OfBody ?? createHash('md5').update(message.Body ?? '').digest('hex'),
      md5OfMessageAttributes: message.MD5OfMessageAttributes ?? null,
      eventSource: 'aws:sqs',
      eventSourceARN: this.#queueArn,
      awsRegion: this.#queueArn.split(':')[3] ?? 'us-east-1',
    };
  }

  async #release(messages: SqsMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      await this.#sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.#queueUrl,
            Entries: chunk.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 })),
          }),
        )
        .catch(() => undefined);
    }
  }
}

/** Starts a {@link LocalRunner}. */
export function startLocalRunner(options: LocalRunnerOptions): Promise<LocalRunner> {
  return new LocalRunner(options).start();
}

/**
 * Which records failed, read the way Lambda reads a ReportBatchItemFailures response: null, empty
 * or no list = none; an invalid response, an empty identifier or an id not in the batch = all.
 */
export function failuresOf(response: unknown, event: SqsEvent, reportBatchItemFailures: boolean): Set<string> {
  const all = new Set(event.Records.map((record) => record.messageId));
  if (!reportBatchItemFailures || response === null || response === undefined) return new Set();
  if (typeof response !== 'object') return all;
  const list = (response as Partial<SqsBatchResponse>).batchItemFailures;
  if (list === null || list === undefined) return new Set();
  if (!Array.isArray(list)) return all;
  const failed = new Set<string>();
  for (const item of list) {
    const id = (item as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id.length === 0 || !all.has(id)) return all;
    failed.add(id);
  }
  return failed;
}

async function loadHandler(handler: InvokableHandler | string, exportName: string): Promise<InvokableHandler> {
  if (typeof handler === 'function') return handler;
  const module = (await import(pathToFileURL(handler).href)) as Record<string, unknown>;
  const exported = module[exportName];
  if (typeof exported !== 'function') throw new InvalidOptionsError(`${handler} does not export a function named '${exportName}'.`);
  return exported as InvokableHandler;
}

function localContext(functionName: string, timeoutMs: number): LambdaContext & Record<string, unknown> {
  const deadline = Date.now() + timeoutMs;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '128',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${requestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

function pick(source: Record<string, string>, names: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of names) if (source[name] !== undefined) result[name] = source[name];
  return result;
}
