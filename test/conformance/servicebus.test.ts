/**
 * Live conformance runner for the Service Bus adapter. It runs only against a real namespace:
 * set `OMNIQUEUE_SERVICEBUS_CONNECTION` to its connection string (the account needs Manage rights,
 * since `ensure` creates topics and subscriptions). No Service Bus can run on the CI machines (the
 * emulator ships only as a container and there is no Docker engine), so without the variable the
 * suite is reported as not run — the one broker suite that `OMNIQUEUE_REQUIRE_BROKERS=1` does not
 * turn into a failure. The adapter's unit tests (test/servicebus) run everywhere against an SDK
 * test double.
 */
import { afterAll, describe } from 'vitest';
import type { ServiceBusClient } from '@azure/service-bus';
import { topicEntity } from '../../adapters/servicebus/names.js';
import { SERVICEBUS_FEATURES, ServiceBusAdapter } from '../../adapters/servicebus/ServiceBusAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { runConformance } from './runConformance.js';

const connectionString = process.env.OMNIQUEUE_SERVICEBUS_CONNECTION;
const NOT_RUN = 'not run: no Service Bus namespace (set OMNIQUEUE_SERVICEBUS_CONNECTION)';
if (!connectionString) console.warn(`servicebus conformance — ${NOT_RUN}`);

let foreign: ServiceBusClient | undefined;
afterAll(async () => {
  await foreign?.close();
});

describe.skipIf(!connectionString)(`servicebus${connectionString ? '' : ` — ${NOT_RUN}`}`, () => {
  runConformance({
    name: 'servicebus (live namespace)',
    features: SERVICEBUS_FEATURES,
    // A remote namespace: round trips are tens of milliseconds, scheduled messages ~1 s late.
    timeScale: 3,
    async connect(options) {
      const broker = new Broker(new ServiceBusAdapter({ connectionString }), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      const sdk = await import('@azure/service-bus');
      foreign ??= new sdk.ServiceBusClient(connectionString!);
      const sender = foreign.createSender(topicEntity(topic));
      try {
        await sender.sendMessages({ body: Buffer.from(payload), applicationProperties: { ...headers } });
      } finally {
        await sender.close();
      }
    },
  });
});
