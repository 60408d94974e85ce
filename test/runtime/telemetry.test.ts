/**
 * With an OpenTelemetry SDK installed, OmniQueue's spans follow the messaging semantic conventions,
 * W3C trace context crosses the broker (the process span is a child of the send span, in the same
 * trace), the handler runs inside the process span, and the counters and duration histogram count.
 */
import { context, metrics, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncHooksContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAdapter } from '../../adapters/memory/MemoryAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { deadLetter } from '../../runtime/message.js';

class CollectingReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const exporter = new InMemorySpanExporter();
const reader = new CollectingReader();
const contextManager = new AsyncHooksContextManager().enable();

beforeAll(() => {
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});

afterAll(() => {
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
});

function sumOf(collected: ResourceMetrics, name: string, attributes: Record<string, string>): number {
  let total = 0;
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        const matches = Object.entries(attributes).every(([key, value]) => point.attributes[key] === value);
        if (matches) total += typeof point.value === 'number' ? point.value : (point.value as { count: number }).count;
      }
    }
  }
  return total;
}

describe('OpenTelemetry', () => {
  it('one trace from publish to handler, with messaging attributes, and counters per outcome', async () => {
    const broker = new Broker(new MemoryAdapter(), { logger: silentLogger });
    await broker.init();
    const seen: { traceparent: string | undefined; activeTraceId: string | undefined }[] = [];
    await broker.subscribe<{ n: number }>(
      'traced.orders',
      (msg) => {
        seen.push({ traceparent: msg.headers.traceparent, activeTraceId: trace.getActiveSpan()?.spanContext().traceId });
        trace.getTracer('app').startSpan('charge card').end();
        if (msg.body.n === 2) return deadLetter('refused');
      },
      'billing',
      { ensure: true },
    );
    const { id } = await broker.publish('traced.orders', { body: { n: 1 } });
    await broker.publish('traced.orders', { body: { n: 2 } });
    await expect.poll(() => seen.length).toBe(2);
    await broker.close();

    const spans = exporter.getFinishedSpans();
    const send = spans.find((span) => span.name === 'send traced.orders' && span.attributes['messaging.message.id'] === id)!;
    const process = spans.find((span) => span.name === 'process traced.orders' && span.attributes['messaging.message.id'] === id)!;
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(send.attributes).toMatchObject({ 'messaging.system': 'memory', 'messaging.operation.type': 'send', 'messaging.destination.name': 'traced.orders' });
    expect(process.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.consumer.group.name': 'billing',
      'messaging.message.delivery_count': 1,
    });
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(seen[0]!.traceparent).toContain(send.spanContext().traceId);
    expect(seen[0]!.activeTraceId).toBe(send.spanContext().traceId);
    const child = spans.find((span) => span.name === 'charge card' && span.spanContext().traceId === send.spanContext().traceId)!;
    expect(child.parentSpanContext?.spanId).toBe(process.spanContext().spanId);

    const { resourceMetrics } = await reader.collect();
    const labels = { 'messaging.destination.name': 'traced.orders' };
    expect(sumOf(resourceMetrics, 'omniqueue.messages.published', labels)).toBe(2);
    expect(sumOf(resourceMetrics, 'omniqueue.messages.settled', { ...labels, outcome: 'acked' })).toBe(1);
    expect(sumOf(resourceMetrics, 'omniqueue.messages.settled', { ...labels, outcome: 'dead-lettered' })).toBe(1);
    expect(sumOf(resourceMetrics, 'messaging.process.duration', { ...labels, 'messaging.consumer.group.name': 'billing' })).toBe(2);
    expect(sumOf(resourceMetrics, 'omniqueue.messages.in_flight', labels)).toBe(0);
  });
});
