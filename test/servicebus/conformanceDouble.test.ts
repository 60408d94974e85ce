/**
 * The conformance suite on the SDK test double — NOT a live namespace. It checks that the adapter
 * keeps every contract rule under the Service Bus semantics the double models (peek-lock, delivery
 * count, abandon, scheduled messages, subscription rules, dead-letter forwarding); it says nothing
 * about the real service, which `test/conformance/servicebus.test.ts` covers when a namespace is
 * configured.
 */
import { afterAll } from 'vitest';
import { SERVICEBUS_FEATURES, ServiceBusAdapter } from '../../adapters/servicebus/ServiceBusAdapter.js';
import { topicEntity } from '../../adapters/servicebus/names.js';
import { Broker } from '../../runtime/Broker.js';
import { runConformance } from '../conformance/runConformance.js';
import { ServiceBusDouble } from './ServiceBusDouble.js';

const ns = new ServiceBusDouble({ lockDurationMs: 500 });
afterAll(() => ns.close());

runConformance({
  name: 'servicebus (SDK test double, not a live namespace)',
  features: SERVICEBUS_FEATURES,
  async connect(options) {
    const broker = new Broker(new ServiceBusAdapter({ client: ns.client(), admin: ns.admin() }), options);
    await broker.init();
    return broker;
  },
  async publishForeign(topic, payload, headers) {
    await ns.client().createSender(topicEntity(topic)).sendMessages({ body: Buffer.from(payload), applicationProperties: { ...headers } });
  },
});
