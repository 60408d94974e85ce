/**
 * Factories for real-shaped AWS Lambda SQS events and Lambda contexts: every field the event source
 * mapping sends, real MD5 digests (body and message attributes, computed the way SQS does), standard
 * and FIFO records, raw and SNS-wrapped bodies. Typed against `@types/aws-lambda` so the shapes stay
 * the real ones.
 *
 * @packageDocumentation
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Context, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { encodeSqsMessage } from '../../adapters/sqs/codec.js';
import { WireHeader } from '../../runtime/wire.js';

/** Region of the generated events. */
export const EVENT_REGION = 'us-east-1';
/** Account of the generated events. */
export const EVENT_ACCOUNT = '123456789012';

/** The ARN of a queue in the test account. */
export function queueArn(name: string): string {
  return `arn:aws:sqs:${EVENT_REGION}:${EVENT_ACCOUNT}:${name}`;
}

/** What a test sets on a record; everything else gets a realistic value. */
export interface RecordInit {
  readonly body: string;
  readonly messageId?: string;
  readonly queue?: string;
  readonly eventSourceARN?: string;
  readonly receiveCount?: number;
  readonly sentTimestamp?: number;
  readonly messageAttributes?: SQSMessageAttributes;
  /** FIFO fields (set MessageGroupId for a FIFO record; the queue name should end in `.fifo`). */
  readonly messageGroupId?: string;
  readonly messageDeduplicationId?: string;
  readonly sequenceNumber?: string;
  readonly awsTraceHeader?: string;
  readonly receiptHandle?: string;
}

let sequence = 18_849_496_460_467_696_128n;

/** One SQS event record with every field. */
export function sqsRecord(init: RecordInit): SQSRecord {
  const sent = init.sentTimestamp ?? Date.now() - 50;
  const fifo = init.messageGroupId !== undefined;
  const attributes: SQSRecord['attributes'] = {
    ApproximateReceiveCount: String(init.receiveCount ?? 1),
    SentTimestamp: String(sent),
    SenderId: 'AIDAIENQZJOLO23YVJ4VO',
    ApproximateFirstReceiveTimestamp: String(sent + 10),
    ...(init.awsTraceHeader ? { AWSTraceHeader: init.awsTraceHeader } : {}),
    ...(fifo
      ? {
          MessageGroupId: init.messageGroupId,
          MessageDeduplicationId: init.messageDeduplicationId ?? createHash('sha256').update(init.body).digest('hex'),
          SequenceNumber: init.sequenceNumber ?? String((sequence += 1n)),
        }
      : {}),
  };
  const messageAttributes = init.messageAttributes ?? {};
  return {
    messageId: init.messageId ?? randomUUID(),
    receiptHandle: init.receiptHandle ?? `AQEB${Buffer.from(randomUUID() + randomUUID()).toString('base64')}`,
    body: init.body,
    attributes,
    messageAttributes,
    md5OfBody: md5(init.body),
    md5OfMessageAttributes: Object.keys(messageAttributes).length > 0 ? md5OfMessageAttributes(messageAttributes) : null,
    eventSource: 'aws:sqs',
    eventSourceARN: init.eventSourceARN ?? queueArn(init.queue ?? (fifo ? 'orders-billing.fifo' : 'orders-billing')),
    awsRegion: EVENT_REGION,
  } as SQSRecord;
}

/** String message attributes in the event's shape. */
export function stringAttributes(values: Record<string, string>): SQSMessageAttributes {
  return Object.fromEntries(
    Object.entries(values).map(([name, value]) => [name, { stringValue: value, stringListValues: [], binaryListValues: [], dataType: 'String' }]),
  );
}

/** What an OmniQueue producer sends through SNS with raw delivery: the body and its packed attributes. */
export interface OmniQueueRecordInit extends Omit<RecordInit, 'body' | 'messageAttributes'> {
  readonly id?: string;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
  readonly key?: string;
  readonly publishedAt?: number;
  /** Wrap in an SNS notification envelope (a subscription without raw message delivery). */
  readonly snsWrapped?: boolean;
}

/** A record as an OmniQueue publish produces it (raw SNS delivery, or SNS-wrapped). */
export function omniqueueRecord(init: OmniQueueRecordInit): SQSRecord {
  const binary = init.body instanceof Uint8Array;
  const payload = binary ? (init.body as Uint8Array) : new TextEncoder().encode(JSON.stringify(init.body));
  const headers: Record<string, string> = {
    ...init.headers,
    [WireHeader.Id]: init.id ?? randomUUID(),
    [WireHeader.PublishedAt]: String(init.publishedAt ?? Date.now() - 100),
    [WireHeader.ContentType]: binary ? 'application/octet-stream' : 'application/json',
  };
  const fifo = init.messageGroupId !== undefined;
  const encoded = encodeSqsMessage(headers, payload, init.key, !fifo);
  const messageAttributes = stringAttributes(Object.fromEntries(Object.entries(encoded.attributes).map(([name, value]) => [name, value.StringValue])));
  if (init.snsWrapped) {
    return sqsRecord({
      ...init,
      body: snsEnvelope(encoded.body, Object.fromEntries(Object.entries(encoded.attributes).map(([name, value]) => [name, value.StringValue]))),
    });
  }
  return sqsRecord({ ...init, body: encoded.body, messageAttributes });
}

/** The JSON body SNS delivers to a queue subscribed without raw message delivery. */
export function snsEnvelope(message: string, attributes: Record<string, string> = {}, topicArn = `arn:aws:sns:${EVENT_REGION}:${EVENT_ACCOUNT}:orders`): string {
  const messageId = randomUUID();
  return JSON.stringify({
    Type: 'Notification',
    MessageId: messageId,
    TopicArn: topicArn,
    Message: message,
    Timestamp: new Date().toISOString(),
    SignatureVersion: '1',
    Signature: Buffer.from(`signature-${messageId}`).toString('base64'),
    SigningCertURL: `https://sns.${EVENT_REGION}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem`,
    UnsubscribeURL: `https://sns.${EVENT_REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:${randomUUID()}`,
    ...(Object.keys(attributes).length > 0
      ? { MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { Type: 'String', Value: value }])) }
      : {}),
  });
}

/** The event Lambda invokes the function with. */
export function sqsEvent(records: SQSRecord[]): { Records: SQSRecord[] } {
  return { Records: records };
}

/** A Lambda context shaped like the real one; the deadline is `timeoutMs` from now. */
export function lambdaContext(options: { timeoutMs?: number; functionName?: string } = {}): Context {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const functionName = options.functionName ?? 'orders-billing';
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${EVENT_REGION}:${EVENT_ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: '128',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `2026/01/01/[$LATEST]${requestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** MD5 hex of a string, as `md5OfBody`. */
export function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/**
 * MD5 of message attributes the way SQS computes `MD5OfMessageAttributes`: attributes sorted by
 * name, each as length-prefixed name, length-prefixed data type, a transport byte (1 string, 2
 * binary) and the length-prefixed value.
 */
export function md5OfMessageAttributes(attributes: SQSMessageAttributes): string {
  const hash = createHash('md5');
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(attribute.dataType, 'utf8'));
    if (attribute.binaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      lengthPrefixed(Buffer.from(attribute.binaryValue, 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      lengthPrefixed(Buffer.from(attribute.stringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}
