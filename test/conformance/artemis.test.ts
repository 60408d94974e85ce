/**
 * Conformance runner for the ActiveMQ Artemis adapter (AMQP 1.0) on the broker of
 * `test/brokers/artemis.sh` (127.0.0.1:5673). The foreign publisher is plain rhea: a durable
 * message with a data-section body and application properties sent to the topic's multicast
 * address, no OmniQueue metadata.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe } from 'vitest';
import { Connection, message as rheaMessage, type AwaitableSender } from 'rhea-promise';
import { ARTEMIS_FEATURES, ArtemisAdapter } from '../../adapters/artemis/ArtemisAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { ARTEMIS, artemisMissing } from '../brokers/artemis.js';
import { runConformance } from './runConformance.js';

const missing = await artemisMissing();
let plain: Connection | undefined;
const senders = new Map<string, AwaitableSender>();

afterAll(async () => {
  await plain?.close().catch(() => {});
});

describe.skipIf(missing !== undefined)(`artemis${missing ? ` — skipped: ${missing}` : ''}`, () => {
  runConformance({
    name: 'artemis (AMQP 1.0)',
    features: ARTEMIS_FEATURES,
    timeScale: 2,
    async connect(options) {
      const broker = new Broker(new ArtemisAdapter(ARTEMIS), options);
      await broker.init();
      return broker;
    },
    async publishForeign(topic, payload, headers) {
      if (!plain) {
        plain = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false });
        await plain.open();
      }
      let sender = senders.get(topic);
      if (!sender) {
        sender = await plain.createAwaitableSender({ target: { address: topic, capabilities: ['topic'] } });
        senders.set(topic, sender);
      }
      await sender.send({ message_id: `plain-${randomUUID()}`, durable: true, application_properties: headers, body: rheaMessage.data_section(Buffer.from(payload)) });
    },
  });
});
