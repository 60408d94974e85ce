/**
 * Conformance runner for the Pulsar adapter against the real standalone of
 * `test/brokers/pulsar.sh`. The foreign producer is a plain WebSocket client of Pulsar's producer
 * endpoint: raw bytes and native properties, no OmniQueue metadata.
 */
import { afterAll, describe } from 'vitest';
import { PULSAR_FEATURES, PulsarAdapter } from '../../adapters/pulsar/PulsarAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { PULSAR_LOCK, publishPlain, pulsarAvailable, restartPulsar } from '../brokers/pulsar.js';
import { runConformance } from './runConformance.js';

const url = await pulsarAvailable();
// Shared lock: the fault test's broker restart waits until this file is done.
const lock = url ? await holdFileLock(PULSAR_LOCK, 'shared') : undefined;
afterAll(() => lock?.[Symbol.asyncDispose]());

describe.skipIf(!url)('pulsar (real broker)', () => {
  runConformance({
    name: 'pulsar',
    features: PULSAR_FEATURES,
    timeScale: 2,
    async connect(options) {
      const broker = new Broker(new PulsarAdapter({ url }), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      await publishPlain(url!, topic, payload, headers);
    },
    restart: restartPulsar,
  });
});
