/**
 * The BullMQ adapter. Importing this module registers it as `bullmq`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { BullMQAdapter, type BullMQAdapterOptions } from './BullMQAdapter.js';

export { BullMQAdapter, BULLMQ_FEATURES, type BullMQAdapterOptions, type BullMQEnvelope } from './BullMQAdapter.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    bullmq: BullMQAdapterOptions;
  }
}

register('bullmq', (config) => new BullMQAdapter(config));
