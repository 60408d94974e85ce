/**
 * Conformance runner for the embedded memory adapter. Every broker of the run shares one memory
 * namespace, so a second broker (and the foreign publisher) sees the same topics and groups, the way
 * a second connection to a real broker would.
 */
import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { MEMORY_FEATURES, MemoryAdapter } from '../../adapters/memory/MemoryAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { runConformance } from './runConformance.js';

const namespace = `conformance-memory-${randomUUID()}`;
/** A plain client of the memory broker: sends wire messages without any OmniQueue header. */
const foreign = new MemoryAdapter({ namespace });
afterAll(() => foreign.close());

runConformance({
  name: 'memory',
  features: MEMORY_FEATURES,
  async connect(options) {
    const broker = new Broker(new MemoryAdapter({ namespace }), options);
    await broker.init();
    return broker;
  },
  async publishForeign(topic, payload, headers) {
    await foreign.send({
      id: `native-${randomUUID()}`,
      topic,
      key: undefined,
      headers,
      payload,
      body: undefined,
      publishedAt: Date.now(),
      delayMs: 0,
    });
  },
});
