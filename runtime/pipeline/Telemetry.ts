import {
  context,
  metrics,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  createNoopMeter,
  ProxyTracerProvider,
  type Context,
  type Counter,
  type Histogram,
  type Span,
  type UpDownCounter,
} from '@opentelemetry/api';

/** Outcomes counted per settled message. */
export type Outcome = 'acked' | 'retried' | 'dead-lettered' | 'duplicate';

/** Receives the runtime's measurements; the worker adds a Prometheus sink, the default feeds OpenTelemetry. */
export interface MetricsSink {
  published(topic: string): void;
  settled(topic: string, group: string, outcome: Outcome, durationMs: number): void;
  inFlight(topic: string, group: string, delta: number): void;
  /**
   * False when the sink ignores every measurement (the OpenTelemetry sink with no meter provider):
   * the pipeline then takes no timings and makes no calls. Read once, when the sink is wired into
   * a pipeline or a {@link FanoutMetricsSink}; absent counts as recording.
   */
  readonly recording?: boolean;
}

const SCOPE = 'omniqueue';

/** OpenTelemetry messaging semantic-convention attribute names (as `@opentelemetry/semantic-conventions` names them). */
const ATTR_MESSAGING_SYSTEM = 'messaging.system';
const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';
const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
const ATTR_MESSAGING_MESSAGE_DELIVERY_COUNT = 'messaging.message.delivery_count';

/** Class of the API's no-op meter, to tell when no meter provider is installed. */
const NOOP_METER_CLASS = createNoopMeter().constructor;

/**
 * OpenTelemetry metrics through the global API: a no-op until the app installs an SDK. The API
 * binds a meter to the provider installed when it is created, so a sink created without a meter
 * provider stays a no-op and skips the per-message attribute work altogether.
 */
export class OpenTelemetryMetricsSink implements MetricsSink {
  readonly #noop: boolean;
  readonly #published: Counter;
  readonly #settled: Counter;
  readonly #inFlight: UpDownCounter;
  readonly #duration: Histogram;

  constructor() {
    const meter = metrics.getMeter(SCOPE);
    this.#noop = meter.constructor === NOOP_METER_CLASS;
    this.#published = meter.createCounter('omniqueue.messages.published', { description: 'Messages published' });
    this.#settled = meter.createCounter('omniqueue.messages.settled', { description: 'Messages settled, by outcome' });
    this.#inFlight = meter.createUpDownCounter('omniqueue.messages.in_flight', { description: 'Messages being handled' });
    this.#duration = meter.createHistogram('messaging.process.duration', { unit: 's', description: 'Handler duration' });
  }

  /** False while bound to the API's no-op meter: every measurement would be dropped. */
  get recording(): boolean {
    return !this.#noop;
  }

  published(topic: string): void {
    if (this.#noop) return;
    this.#published.add(1, { [ATTR_MESSAGING_DESTINATION_NAME]: topic });
  }

  settled(topic: string, group: string, outcome: Outcome, durationMs: number): void {
    if (this.#noop) return;
    const attributes = this.#attributes(topic, group)[outcome];
    this.#settled.add(1, attributes);
    this.#duration.record(durationMs / 1000, attributes);
  }

  inFlight(topic: string, group: string, delta: number): void {
    if (this.#noop) return;
    this.#inFlight.add(delta, this.#attributes(topic, group).group);
  }

  readonly #cache = new Map<string, Map<string, GroupAttributes>>();

  #attributes(topic: string, group: string): GroupAttributes {
    let groups = this.#cache.get(topic);
    if (!groups) this.#cache.set(topic, (groups = new Map()));
    let attributes = groups.get(group);
    if (!attributes) {
      const base = { [ATTR_MESSAGING_DESTINATION_NAME]: topic, [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: group };
      attributes = {
        group: base,
        acked: { ...base, outcome: 'acked' },
        retried: { ...base, outcome: 'retried' },
        'dead-lettered': { ...base, outcome: 'dead-lettered' },
        duplicate: { ...base, outcome: 'duplicate' },
      };
      groups.set(group, attributes);
    }
    return attributes;
  }
}

type GroupAttributes = Record<Outcome | 'group', Record<string, string>>;

/** Sends every measurement to several sinks (to those that record). */
export class FanoutMetricsSink implements MetricsSink {
  private readonly sinks: readonly MetricsSink[];
  readonly recording: boolean;

  constructor(sinks: readonly MetricsSink[]) {
    this.sinks = sinks.filter((sink) => sink.recording !== false);
    this.recording = this.sinks.length > 0;
  }

  published(topic: string): void {
    for (const sink of this.sinks) sink.published(topic);
  }

  settled(topic: string, group: string, outcome: Outcome, durationMs: number): void {
    for (const sink of this.sinks) sink.settled(topic, group, outcome, durationMs);
  }

  inFlight(topic: string, group: string, delta: number): void {
    for (const sink of this.sinks) sink.inFlight(topic, group, delta);
  }
}

/** The delegate of the API's proxy provider while no tracer provider is registered. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

const headerSetter = {
  set(carrier: Record<string, string>, key: string, value: string) {
    carrier[key] = value;
  },
};

const headerGetter = {
  keys(carrier: Readonly<Record<string, string>>) {
    return Object.keys(carrier);
  },
  get(carrier: Readonly<Record<string, string>>, key: string) {
    return carrier[key];
  },
};

/**
 * Spans for publish and process with the OpenTelemetry messaging semantic conventions, and W3C trace
 * context carried in headers so one trace crosses the broker.
 */
export class Tracing {
  readonly #tracer = trace.getTracer(SCOPE);

  constructor(private readonly system: string) {}

  /**
   * Is there anything to trace or propagate? False while no tracer provider is registered with the
   * OpenTelemetry API (the global provider is the API's proxy with no delegate) and the global
   * propagator writes no fields: every span would then be a no-op and no header would be written,
   * so publish and process skip the span and context work. Checked on every call, so a provider
   * registered after the broker was created is picked up at once.
   */
  get active(): boolean {
    const provider = trace.getTracerProvider();
    if (!(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_TRACER_PROVIDER) return true;
    return propagation.fields().length > 0;
  }

  /** Starts a producer span and writes its context into `headers`. */
  startPublish(topic: string, messageId: string, headers: Record<string, string>): Span {
    const span = this.#tracer.startSpan(`send ${topic}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        [ATTR_MESSAGING_SYSTEM]: this.system,
        [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
        [ATTR_MESSAGING_OPERATION_NAME]: 'send',
        [ATTR_MESSAGING_DESTINATION_NAME]: topic,
        [ATTR_MESSAGING_MESSAGE_ID]: messageId,
      },
    });
    propagation.inject(trace.setSpan(context.active(), span), headers, headerSetter);
    return span;
  }

  /** Starts a consumer span whose parent is the producer's context found in `headers`. */
  startProcess(topic: string, group: string, messageId: string, attempt: number, headers: Readonly<Record<string, string>>): { span: Span; context: Context } {
    const parent = propagation.extract(context.active(), headers, headerGetter);
    const span = this.#tracer.startSpan(
      `process ${topic}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [ATTR_MESSAGING_SYSTEM]: this.system,
          [ATTR_MESSAGING_OPERATION_TYPE]: 'process',
          [ATTR_MESSAGING_OPERATION_NAME]: 'process',
          [ATTR_MESSAGING_DESTINATION_NAME]: topic,
          [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: group,
          [ATTR_MESSAGING_MESSAGE_ID]: messageId,
          [ATTR_MESSAGING_MESSAGE_DELIVERY_COUNT]: attempt,
        },
      },
      parent,
    );
    return { span, context: trace.setSpan(parent, span) };
  }

  /** Ends a span, recording the error when there is one. */
  end(span: Span, error?: unknown): void {
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : new Error(String(error)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }
}

export { context as otelContext };
