/**
 * The orders example's topology: one topic, three groups, one handler module per group.
 * Every group gets every order; inside a group each order goes to one consumer.
 *
 * Run it with `npm run example` (in-process, memory adapter), or as a long-running worker with
 * `npm run omniqueue -- worker --config examples/orders/omniqueue.config.ts`.
 */
import { defineTopology } from '../../runtime/topology.js';

export default defineTopology({
  // No `adapter`: the in-process memory broker. Swap in e.g. { name: 'rabbitmq', url: process.env.AMQP_URL }.
  topics: {
    orders: {
      groups: {
        // A negative amount makes billing throw; after 3 attempts the order lands in orders.billing.dlq.
        billing: { handler: './handlers/billing.ts', retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 200 }, concurrency: 8 },
        // Inventory fails once on a flaky warehouse call and succeeds on the retry.
        inventory: { handler: './handlers/inventory.ts', retry: { initialDelayMs: 50 }, ordering: 'key' },
        notifications: { handler: './handlers/notifications.ts', concurrency: 4 },
      },
    },
  },
});
