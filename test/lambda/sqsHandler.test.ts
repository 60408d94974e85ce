/**
 * The Lambda SQS trigger on real-shaped events. Verdicts that need SQS (ChangeMessageVisibility,
 * dead-letter sends) run against the fauxqs emulator.
 */
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type Message as SqsMessage,
} from '@aws-sdk/client-sqs';
import { build } from 'esbuild';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PACKED_ATTRIBUTE } from '../../adapters/sqs/codec.js';
import { silentLogger } from '../../runtime/Logger.js';
import { deadLetter, nack, type Message } from '../../runtime/message.js';
import { sqsHandler, xrayToTraceparent } from '../../triggers/lambda/index.js';
import { SQS_CLIENT_CONFIG, sqsMissing } from '../brokers/sqs.js';
import { lambdaContext, md5, omniqueueRecord, queueArn, snsEnvelope, sqsEvent, sqsRecord, stringAttributes } from './events.js';

const quiet = { logger: silentLogger, tracing: false } as const;

describe('sqsHandler: records → unified messages', () => {
  it('an OmniQueue record (raw SNS delivery) keeps id, body, user headers, key, attempt, publishedAt', async () => {
    const seen: Message[] = [];
    const handler = sqsHandler((message) => void seen.push(message), quiet);
    const record = omniqueueRecord({ id: 'order-1', body: { orderId: 1 }, headers: { 'x-tenant': 'acme' }, key: 'customer-7', receiveCount: 3, publishedAt: 1_700_000_000_000 });
    expect(record.md5OfBody).toBe(md5(record.body));
    expect(Object.keys(record.messageAttributes).sort()).toEqual([PACKED_ATTRIBUTE, 'x-tenant']);
    const response = await handler(sqsEvent([record]), lambdaContext());
    expect(response).toEqual({ batchItemFailures: [] });
    expect(seen).toHaveLength(1);
    const message = seen[0]!;
    expect(message.id).toBe('order-1');
    expect(message.body).toEqual({ orderId: 1 });
    expect(message.headers).toEqual({ 'x-tenant': 'acme', 'content-type': 'application/json' });
    expect(message.key).toBe('customer-7');
    expect(message.attempt).toBe(3);
    expect(message.publishedAt.getTime()).toBe(1_700_000_000_000);
    expect(message.topic).toBe('orders-billing');
    expect(message.group).toBe('orders-billing');
    expect(message.raw).toBe(record);
  });

  it('a foreign record: id = SQS messageId, JSON body, message attributes → headers, SentTimestamp → publishedAt', async () => {
    const seen: Message[] = [];
    const handler = sqsHandler((message) => void seen.push(message), { ...quiet, topic: 'orders', group: 'billing' });
    const record = sqsRecord({ body: JSON.stringify({ legacy: true }), messageAttributes: stringAttributes({ 'x-source': 'legacy-app' }), sentTimestamp: 1_600_000_000_000 });
    await handler(sqsEvent([record]));
    expect(seen[0]).toMatchObject({ id: record.messageId, body: { legacy: true }, headers: { 'x-source': 'legacy-app' }, topic: 'orders', group: 'billing', attempt: 1 });
    expect(seen[0]!.publishedAt.getTime()).toBe(1_600_000_000_000);
  });

  it('an SNS envelope (subscription without raw delivery) is unwrapped, its attributes unpacked', async () => {
    const seen: Message[] = [];
    const handler = sqsHandler((message) => void seen.push(message), quiet);
    const wrapped = omniqueueRecord({ id: 'sns-1', body: { wrapped: true }, headers: { 'x-a': '1' }, snsWrapped: true });
    const foreign = sqsRecord({ body: snsEnvelope(JSON.stringify({ plain: 1 }), { 'x-b': '2' }) });
    expect(JSON.parse(wrapped.body).Type).toBe('Notification');
    await handler(sqsEvent([wrapped, foreign]));
    const byId = new Map(seen.map((message) => [message.id, message]));
    expect(byId.get('sns-1')).toMatchObject({ body: { wrapped: true }, headers: { 'x-a': '1' } });
    expect(byId.get(foreign.messageId)).toMatchObject({ body: { plain: 1 }, headers: { 'x-b': '2' } });
  });

  it('binary bodies arrive as bytes; FIFO MessageGroupId is the key; AWSTraceHeader becomes traceparent', async () => {
    const seen: Message[] = [];
    const handler = sqsHandler((message) => void seen.push(message), quiet);
    const bytes = new Uint8Array([0, 1, 2, 254, 255]);
    const trace = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    await handler(sqsEvent([omniqueueRecord({ id: 'bin', body: bytes, messageGroupId: 'g-1', awsTraceHeader: trace })]));
    expect(seen[0]!.body).toEqual(bytes);
    expect(seen[0]!.contentType).toBe('application/octet-stream');
    expect(seen[0]!.key).toBe('g-1');
    expect(seen[0]!.headers.traceparent).toBe('00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01');
    expect(xrayToTraceparent('nonsense')).toBeUndefined();
  });
});

describe('sqsHandler: verdicts → batchItemFailures', () => {
  const records = () => [1, 2, 3, 4].map((n) => omniqueueRecord({ id: `m${n}`, body: { n } }));

  it('ack → success; throw and nack → failed ids (no SDK call when changeVisibility is off)', async () => {
    const batch = records();
    const handler = sqsHandler<{ n: number }>(
      (message) => {
        if (message.body.n === 2) throw new Error('boom');
        if (message.body.n === 3) return nack();
      },
      { ...quiet, changeVisibility: false },
    );
    const response = await handler(sqsEvent(batch), lambdaContext());
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: batch[1]!.messageId }, { itemIdentifier: batch[2]!.messageId }]);
  });

  it('every record failed → every id listed, no throw; throwOnFullBatchFailure → throws', async () => {
    const batch = records();
    const failing = sqsHandler(() => nack(), { ...quiet, changeVisibility: false });
    expect((await failing(sqsEvent(batch))).batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(batch.map((record) => record.messageId));
    const throwing = sqsHandler(() => nack(), { ...quiet, changeVisibility: false, throwOnFullBatchFailure: true });
    await expect(throwing(sqsEvent(batch))).rejects.toMatchObject({ name: 'FullBatchFailureError' });
    expect(await failing(sqsEvent([]))).toEqual({ batchItemFailures: [] });
  });

  it('standard queue: records run concurrently, never above the limit', async () => {
    let active = 0;
    let peak = 0;
    const handler = sqsHandler(
      async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 20));
        active--;
      },
      { ...quiet, concurrency: 3 },
    );
    const batch = Array.from({ length: 10 }, (_, n) => omniqueueRecord({ body: { n } }));
    expect((await handler(sqsEvent(batch), lambdaContext())).batchItemFailures).toEqual([]);
    expect(peak).toBe(3);
  });

  it('FIFO: in order; after a failure the rest of that message group fails, other groups continue', async () => {
    const order: string[] = [];
    const batch = [
      ['a', 'a1'],
      ['b', 'b1'],
      ['a', 'a2'],
      ['b', 'b2'],
      ['a', 'a3'],
      ['b', 'b3'],
    ].map(([group, id]) => omniqueueRecord({ id, body: { id }, messageGroupId: group }));
    const handler = sqsHandler<{ id: string }>(
      (message) => {
        order.push(message.body.id);
        if (message.body.id === 'a2') throw new Error('a2 fails');
      },
      { ...quiet, changeVisibility: false },
    );
    const response = await handler(sqsEvent(batch), lambdaContext());
    expect(order).toEqual(['a1', 'b1', 'a2', 'b2', 'b3']);
    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual([batch[2]!.messageId, batch[4]!.messageId]);

    order.length = 0;
    const strict = sqsHandler<{ id: string }>(
      (message) => {
        order.push(message.body.id);
        if (message.body.id === 'a2') throw new Error('a2 fails');
      },
      { ...quiet, changeVisibility: false, skipGroupOnError: false },
    );
    const strictResponse = await strict(sqsEvent(batch), lambdaContext());
    expect(order).toEqual(['a1', 'b1', 'a2']);
    expect(strictResponse.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual(batch.slice(2).map((record) => record.messageId));
  });

  it('records unprocessed near the timeout are reported as failures, not lost', async () => {
    const handled: number[] = [];
    const handler = sqsHandler<{ n: number }>(
      async (message) => {
        await new Promise((resolve) => setTimeout(resolve, 150));
        handled.push(message.body.n);
      },
      { ...quiet, concurrency: 1, timeoutMarginMs: 100 },
    );
    const batch = Array.from({ length: 6 }, (_, n) => omniqueueRecord({ body: { n } }));
    const response = await handler(sqsEvent(batch), lambdaContext({ timeoutMs: 500 }));
    const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    const succeeded = batch.filter((record) => !failed.has(record.messageId));
    expect(failed.size).toBeGreaterThan(0);
    expect(succeeded.length + failed.size).toBe(batch.length);
    // Nothing reported as success that was not handled.
    for (const record of succeeded) expect(handled).toContain(JSON.parse(record.body).n);
  });

  it('does not load the AWS SDK at module top level (it is a dynamic import in the bundle)', async () => {
    const result = await build({
      entryPoints: ['triggers/lambda/index.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      metafile: true,
      external: ['@aws-sdk/*'],
      logLevel: 'silent',
    });
    const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.filter((entry) => entry.path.startsWith('@aws-sdk/')));
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.every((entry) => entry.kind === 'dynamic-import')).toBe(true);
  });
});

const missing = await sqsMissing();

describe.skipIf(missing !== undefined)(`sqsHandler on the SQS emulator${missing ? ` — skipped: ${missing}` : ''}`, () => {
  const sqs = new SQSClient({ ...SQS_CLIENT_CONFIG, credentials: { ...SQS_CLIENT_CONFIG.credentials } });
  afterAll(() => sqs.destroy());
  const settings = { ...quiet, sqs: { ...SQS_CLIENT_CONFIG } };

  /** A source queue with a DLQ, and a message received from it as Lambda would get it. */
  async function sourceWithMessage(headers: Record<string, string> = {}) {
    const name = `lt-${randomUUID().slice(0, 8)}`;
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
    const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    const source = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '30' } }));
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: source.QueueUrl, Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 10 }) } }));
    const record = omniqueueRecord({ id: `id-${name}`, body: { order: 1 }, headers });
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: source.QueueUrl,
        MessageBody: record.body,
        MessageAttributes: Object.fromEntries(Object.entries(record.messageAttributes).map(([key, value]) => [key, { DataType: 'String', StringValue: value.stringValue! }])),
      }),
    );
    const received = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: source.QueueUrl, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 1 }))).Messages![0]!;
    const event = sqsEvent([
      sqsRecord({
        body: received.Body!,
        messageId: received.MessageId!,
        receiptHandle: received.ReceiptHandle!,
        eventSourceARN: queueArn(name).replace('123456789012', '000000000000'),
        receiveCount: Number(received.Attributes!.ApproximateReceiveCount),
        messageAttributes: record.messageAttributes,
      }),
    ]);
    return { name, sourceUrl: source.QueueUrl!, dlqUrl: dlq.QueueUrl!, event, received };
  }

  async function receive(url: string): Promise<SqsMessage[]> {
    return (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 0 }))).Messages ?? [];
  }

  it('nack with a delay → ChangeMessageVisibility (rounded up to seconds), then reported failed', async () => {
    const { sourceUrl, event } = await sourceWithMessage();
    const handler = sqsHandler(() => nack({ delayMs: 1_200 }), settings);
    const response = await handler(event, lambdaContext());
    expect(response.batchItemFailures).toHaveLength(1);
    expect(await receive(sourceUrl)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    // Visible again after 2 s, long before the queue's 30 s visibility timeout.
    const again = await receive(sourceUrl);
    expect(again).toHaveLength(1);
    expect(again[0]!.Attributes!.ApproximateReceiveCount).toBe('2');
  });

  it('deadLetter verdict → sent to the source queue’s DLQ with the dlq headers, reported as success', async () => {
    const { dlqUrl, event } = await sourceWithMessage({ 'x-tenant': 'acme' });
    const handler = sqsHandler(() => deadLetter('cannot-bill'), settings);
    expect((await handler(event, lambdaContext())).batchItemFailures).toEqual([]);
    const dead = await receive(dlqUrl);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.Body).toBe(JSON.stringify({ order: 1 }));
    expect(dead[0]!.MessageAttributes!['x-tenant']!.StringValue).toBe('acme');
    const packed = JSON.parse(dead[0]!.MessageAttributes![PACKED_ATTRIBUTE]!.StringValue!);
    expect(packed).toMatchObject({ 'omniqueue-dlq-reason': 'cannot-bill', 'omniqueue-dlq-attempts': '1' });
  });

  it('max attempts reached and a schema failure → dead-lettered too', async () => {
    const exhausted = await sourceWithMessage();
    const failing = sqsHandler(
      () => {
        throw new Error('still broken');
      },
      { ...settings, retry: { maxAttempts: 1 } },
    );
    expect((await failing(exhausted.event, lambdaContext())).batchItemFailures).toEqual([]);
    const dead = await receive(exhausted.dlqUrl);
    expect(JSON.parse(dead[0]!.MessageAttributes![PACKED_ATTRIBUTE]!.StringValue!)).toMatchObject({ 'omniqueue-dlq-reason': 'max-attempts-exceeded', 'omniqueue-dlq-error': 'Error: still broken' });

    const invalid = await sourceWithMessage();
    let called = false;
    const schemaHandler = sqsHandler(() => void (called = true), { ...settings, schema: z.object({ order: z.string() }) });
    expect((await schemaHandler(invalid.event, lambdaContext())).batchItemFailures).toEqual([]);
    expect(called).toBe(false);
    const deadSchema = await receive(invalid.dlqUrl);
    expect(JSON.parse(deadSchema[0]!.MessageAttributes![PACKED_ATTRIBUTE]!.StringValue!)).toMatchObject({ 'omniqueue-dlq-reason': 'schema-validation-failed' });
  });
});
