import type { StandardSchemaV1 } from '@standard-schema/spec';
import { stderrLogger, type Logger } from '../Logger.js';
import type { IdempotencyOptions } from './ConsumePipeline.js';
import type { RetryPolicy } from './retry.js';
import { FanoutMetricsSink, OpenTelemetryMetricsSink, Tracing, type MetricsSink } from './Telemetry.js';

/** Where a source's pipeline reports: logs, metrics, spans. */
export interface ObservabilityOptions {
  /** Logger. Default: warnings and errors as JSON on stderr. */
  readonly logger?: Logger;
  /** Extra metrics sinks; OpenTelemetry metrics are always fed. */
  readonly metrics?: readonly MetricsSink[];
  /** OpenTelemetry spans. Default true. */
  readonly tracing?: boolean;
}

/** The pipeline options every trigger takes, the same as a subscription's. */
export interface HandlerPipelineOptions<T> extends ObservabilityOptions {
  /** Retry policy; `maxAttempts` decides when a failing message is dead-lettered. */
  readonly retry?: Partial<RetryPolicy>;
  /** A Standard Schema: a body that fails it is dead-lettered at once. */
  readonly schema?: StandardSchemaV1<unknown, T>;
  /** Idempotent consumer: skip ids already processed. */
  readonly idempotency?: IdempotencyOptions;
  /** What to do with a JSON-typed body that is not JSON. Default `dead-letter`. */
  readonly invalidJson?: 'dead-letter' | 'deliver-raw';
}

/** Resolves a source's logger, metrics sink (OpenTelemetry plus extras) and tracer for messaging system `system`. */
export function pipelineServices(options: ObservabilityOptions, system: string): { logger: Logger; metrics: MetricsSink; tracing: Tracing | undefined } {
  const sinks = [new OpenTelemetryMetricsSink(), ...(options.metrics ?? [])];
  return {
    logger: options.logger ?? stderrLogger,
    metrics: sinks.length === 1 ? sinks[0]! : new FanoutMetricsSink(sinks),
    tracing: options.tracing === false ? undefined : new Tracing(system),
  };
}
