/**
 * The NATS JetStream adapter (`@nats-io/transport-node` + `@nats-io/jetstream`). Importing this
 * module registers it as `nats`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { NatsAdapter, type NatsAdapterOptions } from './NatsAdapter.js';

export { NatsAdapter, NATS_FEATURES, KEY_HEADER, streamName, durableName, maxDeliverFor, type NatsAdapterOptions, type NatsCreateOptions } from './NatsAdapter.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    nats: NatsAdapterOptions;
  }
}

register('nats', (config) => new NatsAdapter(config));
