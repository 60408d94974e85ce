/**
 * Child process for the SIGKILL fault test: joins `<group>` on `<topic>` with `concurrency`
 * and never settles anything, printing `held <id>` per delivery, until it is killed.
 * Usage: `node --import tsx test/nats/holdingWorker.ts <topic> <group> <concurrency>`.
 */
import { NatsAdapter } from '../../adapters/nats/NatsAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { NATS_SERVERS } from '../brokers/nats.js';

const [topic, group, concurrency] = process.argv.slice(2);
const broker = new Broker(new NatsAdapter({ servers: NATS_SERVERS, logger: silentLogger }), { logger: silentLogger });
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
