/**
 * AWS Lambda trigger: `sqsHandler(handler, options)` turns an OmniQueue handler into a Lambda
 * handler for SQS events (partial batch responses). No AWS SDK is loaded unless a record is
 * delayed or dead-lettered.
 *
 * @packageDocumentation
 */
export { sqsHandler, decodeRecord, xrayToTraceparent, FullBatchFailureError, type SqsHandlerOptions, type SqsClientSettings } from './sqsHandler.js';
export type { LambdaContext, SqsBatchResponse, SqsEvent, SqsEventMessageAttribute, SqsEventRecord, SqsEventRecordAttributes, SqsLambdaHandler } from './types.js';
