/**
 * The SQS/SNS adapter. Importing this module registers it as `sqs`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { SqsAdapter, type SqsAdapterOptions } from './SqsAdapter.js';

export { SqsAdapter, type SqsAdapterOptions, type SqsCreateOptions } from './SqsAdapter.js';
export { PACKED_ATTRIBUTE, SQS_MAX_ATTRIBUTES, SQS_MAX_MESSAGE_BYTES, SQS_MAX_USER_HEADERS } from './codec.js';
export { snsTopicName, sqsQueueName } from './names.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    sqs: SqsAdapterOptions;
  }
}

register('sqs', (config) => new SqsAdapter(config));
