/**
 * Tracing skips its span and context work while no tracer provider is registered with the
 * OpenTelemetry API, and picks a provider up as soon as one is registered — also for a broker (and
 * a subscription) created before the registration. Its own file: it changes the global OTel state.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncHooksContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryAdapter } from '../../adapters/memory/MemoryAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { Tracing } from '../../runtime/pipeline/Telemetry.js';

afterAll(() => {
  trace.disable();
  propagation.disable();
  context.disable();
});

describe('OpenTelemetry registered after the broker was created', () => {
  it('no provider: no trace headers; provider registered later: spans and one trace across the broker', async () => {
    const tracing = new Tracing('memory');
    expect(tracing.active).toBe(false);

    const broker = new Broker(new MemoryAdapter(), { logger: silentLogger });
    await broker.init();
    const seen: { n: number; traceparent: string | undefined; activeTraceId: string | undefined }[] = [];
    await broker.subscribe<{ n: number }>(
      'late.otel',
      (msg) => {
        seen.push({ n: msg.body.n, traceparent: msg.headers.traceparent, activeTraceId: trace.getActiveSpan()?.spanContext().traceId });
      },
      'g',
      { ensure: true },
    );

    await broker.publish('late.otel', { body: { n: 1 } });
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]!.traceparent).toBeUndefined();
    expect(seen[0]!.activeTraceId).toBeUndefined();

    // A propagator alone (no tracer provider) is enough to turn the work back on: headers are carried.
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    expect(tracing.active).toBe(true);
    propagation.disable();
    expect(tracing.active).toBe(false);

    const exporter = new InMemorySpanExporter();
    context.setGlobalContextManager(new AsyncHooksContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    expect(tracing.active).toBe(true);

    const { id } = await broker.publish('late.otel', { body: { n: 2 } });
    await expect.poll(() => seen.length).toBe(2);
    await broker.close();

    const spans = exporter.getFinishedSpans();
    const send = spans.find((span) => span.name === 'send late.otel' && span.attributes['messaging.message.id'] === id);
    const process = spans.find((span) => span.name === 'process late.otel' && span.attributes['messaging.message.id'] === id);
    expect(send).toBeDefined();
    expect(process).toBeDefined();
    expect(process!.spanContext().traceId).toBe(send!.spanContext().traceId);
    expect(process!.parentSpanContext?.spanId).toBe(send!.spanContext().spanId);
    expect(seen[1]!.traceparent).toContain(send!.spanContext().traceId);
    expect(seen[1]!.activeTraceId).toBe(send!.spanContext().traceId);
  });
});
