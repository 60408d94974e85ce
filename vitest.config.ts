import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Fault tests restart shared brokers (RabbitMQ `stop_app`, a NATS or Kafka restart …). They run in a
 * second, serial pass (`OMNIQUEUE_FAULTS=1`, see `npm test`) so no other test file sees the outage.
 */
export const FAULT_TESTS = ['test/**/faults.test.ts'];
const faultPass = process.env.OMNIQUEUE_FAULTS === '1';
const everyTest = ['test/**/*.test.ts', 'runtime/**/*.test.ts', 'adapters/**/*.test.ts', 'triggers/**/*.test.ts', 'infra/**/*.test.ts'];

export default defineConfig({
  resolve: {
    alias: [
      { find: /^omniqueue$/, replacement: here('./runtime/index.ts') },
      { find: /^omniqueue\/(adapters|triggers)\/([a-z0-9-]+)$/, replacement: here('./$1/$2/index.ts') },
      { find: /^omniqueue\/infra$/, replacement: here('./infra/index.ts') },
      { find: /^omniqueue\/outbox$/, replacement: here('./runtime/outbox/index.ts') },
      { find: /^omniqueue\/stores\/(redis|postgres)$/, replacement: here('./runtime/stores/$1.ts') },
    ],
  },
  test: {
    include: faultPass ? FAULT_TESTS : everyTest,
    exclude: faultPass ? [] : [...FAULT_TESTS, '**/node_modules/**'],
    fileParallelism: !faultPass,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
