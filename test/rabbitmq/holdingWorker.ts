/**
 * Child process for the SIGKILL fault test: joins `<group>` on `<topic>` with `concurrency`
 * and never settles anything, printing `held <id>` per delivery, until it is killed.
 * Usage: `node --import tsx test/rabbitmq/holdingWorker.ts <topic> <group> <concurrency>`.
 */
import { RabbitMQAdapter } from '../../adapters/rabbitmq/RabbitMQAdapter.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { AMQP_URL } from '../brokers/rabbitmq.js';

const [topic, group, concurrency] = process.argv.slice(2);
const broker = new Broker(new RabbitMQAdapter({ url: AMQP_URL, logger: silentLogger }), { logger: silentLogger });
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
