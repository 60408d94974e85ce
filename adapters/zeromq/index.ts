/**
 * The brokerless ZeroMQ adapter (`zeromq` v6). Importing this module registers it as `zeromq`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { ZeroMqAdapter, type ZeroMqAdapterOptions } from './ZeroMqAdapter.js';

export { ZeroMqAdapter, ZEROMQ_FEATURES, headersFrame, type ZeroMqAdapterOptions } from './ZeroMqAdapter.js';
export { Command, KEY_HEADER, type Frames } from './protocol.js';
export type { ZeroMqRawDelivery } from './ZeroMqDelivery.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    zeromq: ZeroMqAdapterOptions;
  }
}

register('zeromq', (config) => new ZeroMqAdapter(config));
