/**
 * Child process for the Artemis SIGKILL fault test: joins `<group>` on `<topic>` with
 * `concurrency` and never settles anything, printing `held <id>` per delivery, until it is killed.
 * Usage: `node --import tsx test/artemis/holdingWorker.ts <topic> <group> <concurrency>`.
 */
import { ArtemisAdapter } from '../../adapters/artemis/ArtemisAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { ARTEMIS } from '../brokers/artemis.js';

const [topic, group, concurrency] = process.argv.slice(2);
const broker = new Broker(new ArtemisAdapter(ARTEMIS), { logger: silentLogger });
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
