/**
 * OmniQueue: one handler, every runtime.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './message.js';
export type * from './contract.js';
export { DelaySupport, AttemptSource } from './contract.js';
export { Broker, DEAD_LETTER_GROUP, deadLetterTopicOf, type BrokerOptions, type PublishOptions, type PublishReceipt, type SubscribeOptions } from './Broker.js';
export type { Subscription } from './Subscription.js';
export { create, createAdapter, register, registeredAdapters, type AdapterConfigs, type AdapterFactory, type CreateConfig } from './registry.js';
export { validateName, NAME_RULE } from './validateName.js';
export { WireHeader, encodeBody, decodePayload } from './wire.js';
export { silentLogger, stderrLogger, type Logger, type LogFields } from './Logger.js';
export { DEFAULT_RETRY_POLICY, backoffDelay, resolveRetryPolicy, type RetryPolicy } from './pipeline/retry.js';
export { ConsumePipeline, type IdempotencyOptions, type PipelineSettings } from './pipeline/ConsumePipeline.js';
export type { IdempotencyStore, ClaimResult } from './pipeline/IdempotencyStore.js';
export { MemoryIdempotencyStore } from './pipeline/MemoryIdempotencyStore.js';
export type { MetricsSink, Outcome } from './pipeline/Telemetry.js';
export {
  defineTopology,
  validateTopology,
  resolveTopology,
  loadTopology,
  loadHandler,
  findTopologyFile,
  subscribeOptionsOf,
  GroupRuntime,
  DEFAULT_CONFIG_FILES,
  type TopologyConfig,
  type TopicConfig,
  type GroupConfig,
  type AdapterSettings,
  type HandlerModule,
  type ResolvedGroup,
  type LoadedTopology,
  type LoadedHandler,
} from './topology.js';
import '../adapters/memory/index.js';
