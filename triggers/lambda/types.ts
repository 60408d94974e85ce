/**
 * The AWS Lambda SQS event, response and context shapes, declared here so the trigger needs no
 * runtime dependency (they match `@types/aws-lambda`'s `SQSEvent`, `SQSBatchResponse` and `Context`).
 *
 * @packageDocumentation
 */

/** One message attribute of an SQS event record. */
export interface SqsEventMessageAttribute {
  readonly stringValue?: string | undefined;
  /** Base64. */
  readonly binaryValue?: string | undefined;
  readonly stringListValues?: string[] | undefined;
  readonly binaryListValues?: string[] | undefined;
  /** `String`, `Number`, `Binary` or a custom `String.x`. */
  readonly dataType: string;
}

/** System attributes of an SQS event record (all strings). */
export interface SqsEventRecordAttributes {
  readonly ApproximateReceiveCount: string;
  readonly SentTimestamp: string;
  readonly SenderId: string;
  readonly ApproximateFirstReceiveTimestamp: string;
  readonly AWSTraceHeader?: string | undefined;
  readonly SequenceNumber?: string | undefined;
  readonly MessageGroupId?: string | undefined;
  readonly MessageDeduplicationId?: string | undefined;
  readonly DeadLetterQueueSourceArn?: string | undefined;
}

/** One record of an SQS event. */
export interface SqsEventRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: SqsEventRecordAttributes;
  readonly messageAttributes: Readonly<Record<string, SqsEventMessageAttribute>>;
  readonly md5OfBody: string;
  readonly md5OfMessageAttributes?: string | null | undefined;
  readonly eventSource: string;
  readonly eventSourceARN: string;
  readonly awsRegion: string;
}

/** The event Lambda's SQS event source mapping invokes the function with. */
export interface SqsEvent {
  readonly Records: readonly SqsEventRecord[];
}

/** The partial-batch response (`ReportBatchItemFailures`). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The parts of the Lambda context the trigger uses (the real `Context` satisfies it). */
export interface LambdaContext {
  readonly functionName?: string;
  readonly awsRequestId?: string;
  getRemainingTimeInMillis(): number;
}

/** A Lambda handler for SQS events. */
export type SqsLambdaHandler = (event: SqsEvent, context?: LambdaContext) => Promise<SqsBatchResponse>;
