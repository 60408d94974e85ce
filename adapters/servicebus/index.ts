/**
 * The Azure Service Bus adapter (`@azure/service-bus`, an optional peer dependency). Importing this
 * module registers it as `servicebus`:
 *
 * ```ts
 * import { create } from 'omniqueue';
 * import 'omniqueue/adapters/servicebus';
 * const broker = await create('servicebus', { connectionString: process.env.SERVICEBUS_CONNECTION });
 * ```
 *
 * @packageDocumentation
 */
import { register } from '../../runtime/registry.js';
import { ServiceBusAdapter, type ServiceBusAdapterOptions } from './ServiceBusAdapter.js';

export {
  ServiceBusAdapter,
  SERVICEBUS_FEATURES,
  STANDARD_MAX_MESSAGE_BYTES,
  DEFAULT_LOCK_RENEWAL_MS,
  type ServiceBusAdapterOptions,
  type ServiceBusCreateOptions,
} from './ServiceBusAdapter.js';
export { KeyProperty, ServiceBusProperty, retryFilterExpression, RETRY_RULE_NAME } from './codec.js';
export { serviceBusName, topicEntity, subscriptionEntity } from './names.js';
export type { ServiceBusClientLike, ServiceBusSenderLike, ServiceBusReceiverLike, ServiceBusAdministrationLike, ApplicationPropertyValue } from './clients.js';

declare module '../../runtime/registry.js' {
  interface AdapterConfigs {
    servicebus: ServiceBusAdapterOptions;
  }
}

register('servicebus', (config) => new ServiceBusAdapter(config));
