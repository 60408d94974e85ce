/**
 * The orders example, end to end in one process (`npm run example`):
 *
 * 1. loads `omniqueue.config.ts` and starts the worker on the in-process memory broker;
 * 2. publishes 20 orders — order-13 has a negative amount, which billing rejects;
 * 3. the three groups consume every order; billing retries order-13 and dead-letters it;
 * 4. prints, per group, how many orders were handled, retried and dead-lettered, then the
 *    dead-letter queue with its reasons, and exits 0.
 */
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { deadLetterTopicOf, DEAD_LETTER_GROUP } from '../../runtime/Broker.js';
import type { Message } from '../../runtime/message.js';
import { loadTopology } from '../../runtime/topology.js';
import { PrometheusMetricsSink } from '../../runtime/worker/PrometheusMetricsSink.js';
import { Worker } from '../../runtime/worker/Worker.js';
import type { Order } from './order.js';

const ORDER_COUNT = 20;
const BAD_ORDER = 13;
const started = performance.now();

const topology = await loadTopology(fileURLToPath(new URL('./omniqueue.config.ts', import.meta.url)));
const metrics = new PrometheusMetricsSink({ defaultMetrics: false });
const worker = new Worker({
  topology,
  metrics,
  port: false, // no HTTP endpoints for the demo; `omniqueue worker` serves /healthz, /readyz, /metrics
  logger: pino({ level: process.env.LOG_LEVEL ?? 'error' }), // LOG_LEVEL=info shows the worker's JSON logs
});
await worker.start();
const broker = worker.broker;

// Read the billing dead-letter queue, as an operator's tool would.
const dlqTopic = deadLetterTopicOf('orders', 'billing');
const deadLetters: Message[] = [];
const dlqReader = await broker.subscribe(dlqTopic, (msg) => void deadLetters.push(msg), DEAD_LETTER_GROUP, { ensure: true });

for (let n = 1; n <= ORDER_COUNT; n++) {
  const order: Order = {
    orderId: `order-${n}`,
    customer: `customer${n}@example.com`,
    amount: n === BAD_ORDER ? -42 : 10 * n,
    items: [{ sku: `sku-${(n % 4) + 1}`, quantity: (n % 3) + 1 }],
  };
  await broker.publish('orders', { body: order, key: order.customer, headers: { source: 'examples/orders' } });
}

// Wait until every group has settled every order for good (acked or dead-lettered).
const groups = worker.selectedGroups();
const settledFor = (topic: string, group: string): number => {
  const totals = metrics.totals().find((entry) => entry.topic === topic && entry.group === group);
  return totals ? totals.acked + totals.deadLettered : 0;
};
const deadline = Date.now() + 10_000;
while (groups.some((group) => settledFor(group.topic, group.group) < ORDER_COUNT) || deadLetters.length < 1) {
  if (Date.now() > deadline) {
    console.error('The example did not settle within 10 s:', metrics.totals());
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await dlqReader.close();
await worker.stop('example finished');

// Summary.
const rows = groups.map((group) => {
  const totals = metrics.totals().find((entry) => entry.topic === group.topic && entry.group === group.group)!;
  return [`${group.topic}/${group.group}`, String(totals.acked), String(totals.retried), String(totals.deadLettered)];
});
printTable(['group', 'handled', 'retried', 'dead-lettered'], rows);
console.log(`\nDead-letter queue ${dlqTopic} (${deadLetters.length}):`);
printTable(
  ['order', 'reason', 'attempts', 'error'],
  deadLetters.map((msg) => [
    (msg.body as Order).orderId,
    msg.headers['omniqueue-dlq-reason'] ?? '?',
    msg.headers['omniqueue-dlq-attempts'] ?? '?',
    msg.headers['omniqueue-dlq-error'] ?? '',
  ]),
);
console.log(`\n${ORDER_COUNT} orders published, 3 groups, done in ${Math.round(performance.now() - started)} ms.`);

function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  console.log(line(header));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
}
