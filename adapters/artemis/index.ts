/**
 * The ActiveMQ Artemis adapter (AMQP 1.0 over `rhea-promise`). Importing this module registers it
 * as `artemis`.
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { ArtemisAdapter, type ArtemisAdapterOptions } from './ArtemisAdapter.js';

export { ArtemisAdapter, ARTEMIS_FEATURES, type ArtemisAdapterOptions, type ArtemisRawDelivery } from './ArtemisAdapter.js';
export { fqqn, queueName } from './names.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    artemis: ArtemisAdapterOptions;
  }
}

register('artemis', (config) => new ArtemisAdapter(config));
