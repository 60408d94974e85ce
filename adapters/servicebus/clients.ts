/**
 * The parts of `@azure/service-bus` the adapter calls, as structural types. The SDK's own
 * `ServiceBusClient` and `ServiceBusAdministrationClient` satisfy them; tests pass a double through
 * {@link ServiceBusAdapterOptions.client} / {@link ServiceBusAdapterOptions.admin}. Only types are
 * imported from the SDK, so loading this module never loads the SDK.
 *
 * @packageDocumentation
 */
import type {
  CreateSubscriptionOptions,
  CreateTopicOptions,
  MessageHandlers,
  ServiceBusMessage,
  ServiceBusReceivedMessage,
  ServiceBusReceiverOptions,
  SubscribeOptions,
} from '@azure/service-bus';

export type { ServiceBusMessage, ServiceBusReceivedMessage };

/** Value types Service Bus accepts as application properties. */
export type ApplicationPropertyValue = number | boolean | string | Date | null;

/** The sender calls the adapter makes (`ServiceBusSender`). */
export interface ServiceBusSenderLike {
  sendMessages(messages: ServiceBusMessage | ServiceBusMessage[]): Promise<void>;
  scheduleMessages(messages: ServiceBusMessage | ServiceBusMessage[], scheduledEnqueueTimeUtc: Date): Promise<unknown>;
  close(): Promise<void>;
}

/** The receiver calls the adapter makes (`ServiceBusReceiver` in peek-lock mode). */
export interface ServiceBusReceiverLike {
  subscribe(handlers: MessageHandlers, options?: SubscribeOptions): { close(): Promise<void> };
  completeMessage(message: ServiceBusReceivedMessage): Promise<void>;
  abandonMessage(message: ServiceBusReceivedMessage, propertiesToModify?: Record<string, ApplicationPropertyValue>): Promise<void>;
  deadLetterMessage(
    message: ServiceBusReceivedMessage,
    options?: { deadLetterReason: string; deadLetterErrorDescription: string } & Record<string, ApplicationPropertyValue>,
  ): Promise<void>;
  close(): Promise<void>;
}

/** The client calls the adapter makes (`ServiceBusClient`). */
export interface ServiceBusClientLike {
  createSender(topicName: string): ServiceBusSenderLike;
  createReceiver(topicName: string, subscriptionName: string, options?: ServiceBusReceiverOptions): ServiceBusReceiverLike;
  close(): Promise<void>;
}

/** The administration calls `ensure` makes (`ServiceBusAdministrationClient`). */
export interface ServiceBusAdministrationLike {
  topicExists(topicName: string): Promise<boolean>;
  createTopic(topicName: string, options?: CreateTopicOptions): Promise<unknown>;
  subscriptionExists(topicName: string, subscriptionName: string): Promise<boolean>;
  createSubscription(topicName: string, subscriptionName: string, options?: CreateSubscriptionOptions): Promise<unknown>;
}
