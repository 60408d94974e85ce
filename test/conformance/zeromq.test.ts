/**
 * Conformance runner for the brokerless ZeroMQ adapter. One publisher (an adapter with `bind`)
 * lives for the whole file in this process, the way a service that owns a topic would; every
 * broker a scenario opens is a peer that connects to it (`connect`), so scenarios publish and
 * consume through real sockets on loopback. The foreign publisher is plain zeromq code: a DEALER
 * sending the documented frames `[topic, headers JSON, payload, tag]` and waiting for `$OK`.
 */
import { afterAll, beforeAll } from 'vitest';
import { Dealer } from 'zeromq';
import { ZEROMQ_FEATURES, ZeroMqAdapter } from '../../adapters/zeromq/ZeroMqAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { runConformance } from './runConformance.js';

const publisher = new ZeroMqAdapter({ bind: 'tcp://127.0.0.1:*' });
let plain: Dealer | undefined;
let tags = 0;

beforeAll(() => publisher.connect());
afterAll(async () => {
  plain?.close();
  await publisher.close();
});

runConformance({
  name: 'zeromq (brokerless)',
  features: ZEROMQ_FEATURES,
  async connect(options) {
    const broker = new Broker(new ZeroMqAdapter({ connect: publisher.endpoint! }), options);
    await broker.init();
    return broker;
  },
  async publishForeign(topic, payload, headers) {
    if (!plain) {
      plain = new Dealer({ linger: 0 });
      plain.connect(publisher.endpoint!);
    }
    const tag = `plain-${++tags}`;
    await plain.send([topic, JSON.stringify(headers), payload, tag]);
    const [status, answered] = await plain.receive();
    if (status?.toString() !== '$OK' || answered?.toString() !== tag) throw new Error(`publisher answered ${status?.toString()} ${answered?.toString()}`);
  },
});
