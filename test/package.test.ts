/**
 * The package's `exports` map: every subpath points into `dist/` at a module compiled from a source
 * file of this repository, with its type declarations next to it, and importing that source works
 * without loading a broker client the subpath does not need.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface ExportEntry {
  readonly types: string;
  readonly default: string;
}

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, ExportEntry | string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  dependencies: Record<string, string>;
};
const subpaths = Object.entries(manifest.exports).filter((entry): entry is [string, ExportEntry] => typeof entry[1] === 'object');

describe('package exports', () => {
  it.each(subpaths)('%s maps to a source module with declarations', async (subpath, entry) => {
    expect(entry.default).toMatch(/^\.\/dist\/.+\.js$/);
    expect(entry.types).toBe(entry.default.replace(/\.js$/, '.d.ts'));
    const source = entry.default.replace(/^\.\/dist\//, '../').replace(/\.js$/, '.ts');
    expect(existsSync(new URL(source, import.meta.url)), `${subpath} → ${source}`).toBe(true);
    const module = (await import(source)) as Record<string, unknown>;
    expect(Object.keys(module).length, `${subpath} exports something`).toBeGreaterThan(0);
  });

  it('every broker client is an optional peer dependency, never a dependency', () => {
    for (const [name, meta] of Object.entries(manifest.peerDependenciesMeta)) expect(meta.optional, name).toBe(true);
    for (const client of ['kafkajs', 'amqplib', '@nats-io/jetstream', 'ioredis', 'bullmq', '@aws-sdk/client-sqs', '@azure/service-bus', 'zeromq', 'ws', 'rhea-promise']) {
      expect(manifest.dependencies[client], client).toBeUndefined();
      expect(manifest.peerDependencies[client], client).toBeDefined();
    }
  });
});
