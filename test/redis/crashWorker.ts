/**
 * A worker process the crash tests SIGKILL: it subscribes to a topic with the adapter named in
 * argv, prints `HOLD <id>` for every message it receives and never settles any of them.
 *
 * Usage: tsx test/redis/crashWorker.ts <redis-streams|bullmq> <prefix> <topic> <group> <concurrency>
 */
import { BullMQAdapter } from '../../adapters/bullmq/BullMQAdapter.js';
import { RedisStreamsAdapter } from '../../adapters/redis-streams/RedisStreamsAdapter.js';
import type { Adapter } from '../../runtime/contract.js';
import { Broker } from '../../runtime/Broker.js';
import { silentLogger } from '../../runtime/Logger.js';
import { CRASH_SETTINGS } from './crashSettings.js';

const [adapterName, prefix, topic, group, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
const adapter: Adapter =
  adapterName === 'bullmq' ? new BullMQAdapter({ ...CRASH_SETTINGS.bullmq, prefix }) : new RedisStreamsAdapter({ ...CRASH_SETTINGS.streams, prefix });
const broker = new Broker(adapter, { logger: silentLogger });
await broker.init();
await broker.subscribe(
  topic,
  (message) => {
    process.stdout.write(`HOLD ${message.id}\n`);
    return new Promise<never>(() => {});
  },
  group,
  { ensure: true, concurrency: Number(concurrency) },
);
process.stdout.write('READY\n');
