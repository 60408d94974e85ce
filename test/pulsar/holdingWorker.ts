/**
 * Child process for the SIGKILL fault test: joins `<group>` on `<topic>` with `concurrency`
 * and never settles anything, printing `held <id>` per delivery, until it is killed.
 * Usage: `node --import tsx test/pulsar/holdingWorker.ts <url> <topic> <group> <concurrency>`.
 */
import { PulsarAdapter } from '../../adapters/pulsar/PulsarAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';

const [url, topic, group, concurrency] = process.argv.slice(2);
const broker = new Broker(new PulsarAdapter({ url }), { logger: silentLogger });
await broker.init();
await broker.subscribe(
  topic!,
  async (message) => {
    process.stdout.write(`held ${message.id}\n`);
    await new Promise(() => {});
  },
  group!,
  { ensure: true, concurrency: Number(concurrency) },
);
process.stdout.write('ready\n');
