/**
 * The Apache Pulsar adapter, over Pulsar's official WebSocket API (`ws`) and admin REST API.
 * Importing this module registers it as `pulsar`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { PulsarAdapter, type PulsarAdapterOptions } from './PulsarAdapter.js';

export { PulsarAdapter, PULSAR_FEATURES, type PulsarAdapterOptions } from './PulsarAdapter.js';
export { persistentTopic, retryTopicName, type PulsarNamespace } from './topicNames.js';
export type { PulsarConsumerMessage } from './PulsarConsumption.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    pulsar: PulsarAdapterOptions;
  }
}

register('pulsar', (config) => new PulsarAdapter(config));
