/**
 * The container worker (`omniqueue worker`) as a library: run a topology's groups with health,
 * readiness and Prometheus endpoints and a graceful shutdown.
 *
 * @packageDocumentation
 */
export { Worker, WorkerState, DEFAULT_WORKER_PORT, DEFAULT_DRAIN_TIMEOUT_MS, selectGroups, ensureAdapterRegistered, type WorkerOptions } from './Worker.js';
export { PrometheusMetricsSink, type PrometheusMetricsOptions, type GroupTotals } from './PrometheusMetricsSink.js';
export { createLogger } from './createLogger.js';
export { ProbeServer, type ProbeState } from './ProbeServer.js';
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
  type KnownAdapterSettings,
  type GenericAdapterSettings,
  type HandlerModule,
  type ResolvedGroup,
  type LoadedTopology,
  type LoadedHandler,
} from '../topology.js';
