import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsSink, Outcome } from '../pipeline/Telemetry.js';

/** Settings of a {@link PrometheusMetricsSink}. */
export interface PrometheusMetricsOptions {
  /** Registry the metrics live in. Default: a new registry of its own (never prom-client's global one). */
  readonly registry?: Registry;
  /** Also collect Node's process metrics (CPU, memory, event loop lag …). Default true. */
  readonly defaultMetrics?: boolean;
  /** Histogram buckets of the handler duration, in seconds. */
  readonly durationBuckets?: readonly number[];
}

/** Per topic and group tallies, as {@link PrometheusMetricsSink.totals} returns them. */
export interface GroupTotals {
  /** Topic name. */
  readonly topic: string;
  /** Group name. */
  readonly group: string;
  /** Messages handled and acknowledged. */
  acked: number;
  /** Failed attempts handed back for redelivery. */
  retried: number;
  /** Messages moved to the dead-letter destination. */
  deadLettered: number;
  /** Messages skipped as already processed (idempotent consumer). */
  duplicate: number;
  /** Messages being handled right now. */
  inFlight: number;
}

const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/**
 * A {@link MetricsSink} backed by prom-client: what the worker's `/metrics` endpoint serves.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `omniqueue_messages_published_total` | counter | topic |
 * | `omniqueue_messages_acked_total` | counter | topic, group |
 * | `omniqueue_messages_retried_total` | counter | topic, group |
 * | `omniqueue_messages_dead_lettered_total` | counter | topic, group |
 * | `omniqueue_messages_duplicate_total` | counter | topic, group |
 * | `omniqueue_messages_in_flight` | gauge | topic, group |
 * | `omniqueue_handler_duration_seconds` | histogram | topic, group, outcome |
 */
export class PrometheusMetricsSink implements MetricsSink {
  /** The registry to serve (`await registry.metrics()`, `registry.contentType`). */
  readonly registry: Registry;
  readonly #published: Counter<'topic'>;
  readonly #outcomes: Record<Outcome, Counter<'topic' | 'group'>>;
  readonly #inFlight: Gauge<'topic' | 'group'>;
  readonly #duration: Histogram<'topic' | 'group' | 'outcome'>;
  readonly #totals = new Map<string, GroupTotals>();
  readonly #publishedTotals = new Map<string, number>();

  constructor(options: PrometheusMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const groupLabels = ['topic', 'group'] as const;
    this.#published = new Counter({ name: 'omniqueue_messages_published_total', help: 'Messages published and accepted by the broker.', labelNames: ['topic'], registers });
    this.#outcomes = {
      acked: new Counter({ name: 'omniqueue_messages_acked_total', help: 'Messages handled and acknowledged.', labelNames: groupLabels, registers }),
      retried: new Counter({ name: 'omniqueue_messages_retried_total', help: 'Failed attempts handed back for redelivery.', labelNames: groupLabels, registers }),
      'dead-lettered': new Counter({ name: 'omniqueue_messages_dead_lettered_total', help: 'Messages moved to the dead-letter destination.', labelNames: groupLabels, registers }),
      duplicate: new Counter({ name: 'omniqueue_messages_duplicate_total', help: 'Messages skipped as already processed by the group.', labelNames: groupLabels, registers }),
    };
    this.#inFlight = new Gauge({ name: 'omniqueue_messages_in_flight', help: 'Messages being handled right now.', labelNames: groupLabels, registers });
    this.#duration = new Histogram({
      name: 'omniqueue_handler_duration_seconds',
      help: 'Time from delivery to settlement, by outcome.',
      labelNames: ['topic', 'group', 'outcome'],
      buckets: [...(options.durationBuckets ?? DEFAULT_BUCKETS)],
      registers,
    });
  }

  /** Makes the series of a group visible (at zero) before its first message. */
  declareGroup(topic: string, group: string): void {
    const labels = { topic, group };
    for (const counter of Object.values(this.#outcomes)) counter.inc(labels, 0);
    this.#inFlight.inc(labels, 0);
    this.#group(topic, group);
  }

  published(topic: string): void {
    this.#published.inc({ topic });
    this.#publishedTotals.set(topic, (this.#publishedTotals.get(topic) ?? 0) + 1);
  }

  settled(topic: string, group: string, outcome: Outcome, durationMs: number): void {
    this.#outcomes[outcome].inc({ topic, group });
    this.#duration.observe({ topic, group, outcome }, durationMs / 1000);
    const totals = this.#group(topic, group);
    if (outcome === 'acked') totals.acked++;
    else if (outcome === 'retried') totals.retried++;
    else if (outcome === 'dead-lettered') totals.deadLettered++;
    else totals.duplicate++;
  }

  inFlight(topic: string, group: string, delta: number): void {
    this.#inFlight.inc({ topic, group }, delta);
    this.#group(topic, group).inFlight += delta;
  }

  /** Plain per-group tallies since start (a copy), for summaries and tests. */
  totals(): GroupTotals[] {
    return [...this.#totals.values()].map((totals) => ({ ...totals }));
  }

  /** Messages published per topic since start. */
  publishedTotals(): ReadonlyMap<string, number> {
    return new Map(this.#publishedTotals);
  }

  #group(topic: string, group: string): GroupTotals {
    const key = `${topic}\u0000${group}`;
    let totals = this.#totals.get(key);
    if (!totals) {
      totals = { topic, group, acked: 0, retried: 0, deadLettered: 0, duplicate: 0, inFlight: 0 };
      this.#totals.set(key, totals);
    }
    return totals;
  }
}
