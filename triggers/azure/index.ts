/**
 * Azure Functions trigger (`@azure/functions` v4, an optional peer dependency):
 * `serviceBusTrigger(handler, options)` runs an OmniQueue handler on a Service Bus topic
 * subscription or queue, host-settled or with SDK-type bindings. Never loads `@azure/service-bus`.
 *
 * @packageDocumentation
 */
export {
  serviceBusTrigger,
  MessageAbandonedError,
  DeadLetterNeedsSdkBindingError,
  type ServiceBusTriggerOptions,
  type ServiceBusFunctionHandler,
  type ServiceBusFunctionsApp,
  type SdkBindingInput,
  type SdkBindingMessage,
  type SdkBindingActions,
} from './serviceBusTrigger.js';
