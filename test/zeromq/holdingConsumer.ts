/**
 * Child process of the SIGKILL fault test: joins `group` on `topic` at the publisher `endpoint`
 * and never settles anything, printing one JSON line `{ "id", "attempt" }` per delivery on stdout.
 * The test kills it with SIGKILL while it holds its deliveries.
 *
 *   node --import tsx test/zeromq/holdingConsumer.ts <endpoint> <topic> <group> <prefetch>
 */
import { ZeroMqAdapter } from '../../adapters/zeromq/ZeroMqAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';

const [endpoint, topic, group, prefetch] = process.argv.slice(2);
const broker = new Broker(new ZeroMqAdapter({ connect: endpoint!, heartbeatIntervalMs: 100 }), { logger: silentLogger });
await broker.init();
await broker.subscribe(
  topic!,
  (message) => {
    process.stdout.write(`${JSON.stringify({ id: message.id, attempt: message.attempt })}\n`);
    return new Promise<never>(() => {});
  },
  group!,
  { concurrency: Number(prefetch) },
);
process.stdout.write('{"ready":true}\n');
