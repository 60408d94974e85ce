/**
 * The Kafka adapter (kafkajs). Importing this module registers it as `kafka`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { KafkaAdapter, type KafkaAdapterOptions } from './KafkaAdapter.js';

export { KafkaAdapter, KAFKA_FEATURES, type KafkaAdapterOptions, type KafkaConsumerTuning, type KafkaCreateOptions } from './KafkaAdapter.js';
export { KafkaHeader, KafkaDelivery, type KafkaRawMessage } from './KafkaConsumption.js';
export { retryTopicName } from './retryTopicName.js';
export { PartitionLedger } from './PartitionLedger.js';
export { subscriptionAwareAssigner, SUBSCRIPTION_AWARE_ASSIGNER } from './subscriptionAwareAssigner.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    kafka: KafkaAdapterOptions;
  }
}

register('kafka', (config) => new KafkaAdapter(config));
