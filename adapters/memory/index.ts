/**
 * The embedded broker. Importing this module registers it as `memory`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { MemoryAdapter, type MemoryAdapterOptions } from './MemoryAdapter.js';

export { MemoryAdapter, MEMORY_FEATURES, type MemoryAdapterOptions } from './MemoryAdapter.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    memory: MemoryAdapterOptions;
  }
}

register('memory', (config) => new MemoryAdapter(config));
