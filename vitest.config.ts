import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

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
    include: ['test/**/*.test.ts', 'runtime/**/*.test.ts', 'adapters/**/*.test.ts', 'triggers/**/*.test.ts', 'infra/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
