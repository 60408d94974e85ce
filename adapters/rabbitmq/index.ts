/**
 * The RabbitMQ adapter (amqplib). Importing this module registers it as `rabbitmq`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { RabbitMQAdapter, type RabbitMQAdapterOptions } from './RabbitMQAdapter.js';

export {
  RabbitMQAdapter,
  RABBITMQ_FEATURES,
  KEY_HEADER,
  RabbitExchangeType,
  RabbitQueueType,
  groupQueueName,
  retryQueueName,
  delayQueueName,
  type RabbitMQAdapterOptions,
  type RabbitCreateOptions,
} from './RabbitMQAdapter.js';
export { DELAY_BUCKETS_MS, MAX_DELAY_BUCKET_MS, delayBucket } from './delayBucket.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    rabbitmq: RabbitMQAdapterOptions;
  }
}

register('rabbitmq', (config) => new RabbitMQAdapter(config));
