/**
 * A worker process for the Kafka fault tests: joins `group` on `topic` and holds every message it
 * gets without settling it, printing `held <id>` per message, until it is killed.
 *
 *   node --import tsx test/kafka/faultWorker.ts <topic> <group>
 *
 * @packageDocumentation
 */
import { testBroker } from './kafkaTestKit.js';

const [topic, group] = process.argv.slice(2);
if (!topic || !group) {
  process.stderr.write('usage: faultWorker.ts <topic> <group>\n');
  process.exit(2);
}
const broker = await testBroker();
await broker.subscribe(
  topic,
  async (message) => {
    process.stdout.write(`held ${message.id}\n`);
    await new Promise<never>(() => {});
  },
  group,
  { concurrency: 1_000 },
);
process.stdout.write('ready\n');
