import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { defineTopology, findTopologyFile, loadHandler, loadTopology, resolveTopology, subscribeOptionsOf, validateTopology, type TopologyConfig } from './topology.js';
import { selectGroups } from './worker/Worker.js';

const ok = { topics: { orders: { groups: { billing: { handler: './billing.ts' } } } } } satisfies TopologyConfig;

function problem(config: unknown): string {
  try {
    validateTopology(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('defineTopology / validateTopology', () => {
  it('returns a valid topology unchanged', () => {
    const config = defineTopology({
      adapter: { name: 'memory', namespace: 'x' },
      topics: {
        orders: {
          createOptions: { partitions: 3 },
          groups: {
            billing: { handler: './billing.ts', retry: { maxAttempts: 3, initialDelayMs: 10 }, concurrency: 8, deadLetter: { topic: 'billing-dead' }, ordering: 'key' },
            audit: { handler: './audit.ts', runtime: 'lambda', invalidJson: 'deliver-raw' },
          },
        },
      },
      onReady: () => undefined,
    });
    expect(config.topics.orders.groups.billing.concurrency).toBe(8);
  });

  it.each([
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', concurrency: 0 } } } } }, 'topics.orders.groups.billing.concurrency: must be an integer ≥ 1, got number 0.'],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', concurrency: 1.5 } } } } }, 'topics.orders.groups.billing.concurrency'],
    [{ topics: { orders: { groups: { billing: {} } } } }, 'topics.orders.groups.billing.handler: must be the path of the handler module'],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', retry: { maxAttempts: 0 } } } } } }, 'topics.orders.groups.billing.retry: retry.maxAttempts must be an integer ≥ 1'],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', retry: { attempts: 3 } } } } } }, 'topics.orders.groups.billing.retry.attempts: unknown setting'],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', concurrncy: 3 } } } } }, "topics.orders.groups.billing.concurrncy: unknown setting (did you mean 'concurrency'?)"],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', runtime: 'k8s' } } } } }, 'topics.orders.groups.billing.runtime: must be one of worker, lambda, azure'],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', ordering: 'strict' } } } } }, 'topics.orders.groups.billing.ordering'],
    [{ topics: { orders: { groups: { billing: { handler: './b.ts', deadLetter: { topic: 'no spaces' } } } } } }, "topics.orders.groups.billing.deadLetter.topic: Invalid topic name 'no spaces'"],
    [{ topics: { 'bad/topic': { groups: { billing: { handler: './b.ts' } } } } }, "topics.bad/topic: Invalid topic name 'bad/topic'"],
    [{ topics: { orders: { groups: { '.hidden': { handler: './b.ts' } } } } }, "topics.orders.groups..hidden: Invalid group name '.hidden'"],
    [{ topics: { orders: { groups: {} } } }, 'topics.orders.groups: declares no group'],
    [{ topics: { orders: {} } }, 'topics.orders.groups: must be an object, got nothing.'],
    [{ topics: {} }, 'topics: declares no topic'],
    [{}, 'topics: is required'],
    [{ ...ok, adapter: { url: 'amqp://x' } }, "adapter.name: must be the adapter's registry name"],
    [{ ...ok, onready: () => undefined }, "onready: unknown setting (did you mean 'onReady'?)"],
    [{ ...ok, onReady: 'start' }, 'onReady: must be a function'],
    [[], 'topology: must be an object, got an array.'],
  ])('rejects %j', (config, expected) => {
    expect(problem(config)).toContain(expected);
  });

  it('names the file in the message when given', () => {
    expect(() => validateTopology({ topics: {} }, '/app/omniqueue.config.ts')).toThrow('Invalid topology (in /app/omniqueue.config.ts): topics');
  });

  it('never echoes adapter settings (they may hold credentials)', () => {
    const message = problem({ adapter: { name: '', url: 'amqp://user:secret@host' }, topics: {} });
    expect(message).not.toContain('secret');
  });
});

describe('resolveTopology', () => {
  it('resolves handler paths against the base directory and merges creation options', () => {
    const loaded = resolveTopology(
      {
        topics: {
          orders: {
            createOptions: { partitions: 3, retention: '1d' },
            groups: { billing: { handler: './handlers/billing.ts', createOptions: { retention: '7d' } }, audit: { handler: '/abs/audit.ts', runtime: 'azure' } },
          },
        },
      },
      '/srv/app',
    );
    expect(loaded.adapter).toEqual({ name: 'memory' });
    expect(loaded.groups).toEqual([
      expect.objectContaining({ topic: 'orders', group: 'billing', handlerPath: '/srv/app/handlers/billing.ts', runtime: 'worker', createOptions: { partitions: 3, retention: '7d' } }),
      expect.objectContaining({ topic: 'orders', group: 'audit', handlerPath: '/abs/audit.ts', runtime: 'azure' }),
    ]);
    expect(subscribeOptionsOf(loaded.groups[0]!)).toMatchObject({ ensure: true, createOptions: { partitions: 3, retention: '7d' } });
  });

  it('selects worker groups, or the named ones', () => {
    const loaded = resolveTopology(
      { topics: { a: { groups: { one: { handler: 'x' }, two: { handler: 'x', runtime: 'lambda' } } }, b: { groups: { one: { handler: 'x' } } } } },
      '/',
    );
    expect(selectGroups(loaded).map((g) => `${g.topic}/${g.group}`)).toEqual(['a/one', 'b/one']);
    expect(selectGroups(loaded, ['one']).map((g) => `${g.topic}/${g.group}`)).toEqual(['a/one', 'b/one']);
    expect(selectGroups(loaded, ['a/two']).map((g) => `${g.topic}/${g.group}`)).toEqual(['a/two']);
    expect(() => selectGroups(loaded, ['three'])).toThrow(/--group three: no such group in the topology \(groups: a\/one, a\/two, b\/one\)/);
  });
});

describe('loadTopology / loadHandler', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'omniqueue-topology-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(dir, 'good.ts'), `export const schema = { '~standard': { version: 1, vendor: 'test', validate: (value: unknown) => ({ value }) } };\nexport default () => undefined;\n`);
    writeFileSync(join(dir, 'nodefault.ts'), `export const handler = () => undefined;\n`);
    writeFileSync(join(dir, 'badschema.ts'), `export const schema = { parse() {} };\nexport default () => undefined;\n`);
    writeFileSync(join(dir, 'omniqueue.config.ts'), `export default { topics: { orders: { groups: { billing: { handler: './good.js' } } } } };\n`);
    writeFileSync(join(dir, 'missing.config.ts'), `export default { topics: { orders: { groups: { billing: { handler: './handlers/nope.ts' } } } } };\n`);
    writeFileSync(join(dir, 'nodefault.config.ts'), `export const topology = {};\n`);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a .ts file, resolves handlers next to it (.js specifiers find .ts files) and imports them', async () => {
    expect(findTopologyFile(dir)).toBe(join(dir, 'omniqueue.config.ts'));
    const loaded = await loadTopology(join(dir, 'omniqueue.config.ts'));
    expect(loaded.path).toBe(join(dir, 'omniqueue.config.ts'));
    const handler = await loadHandler(loaded.groups[0]!);
    expect(handler.path).toBe(join(dir, 'good.ts'));
    expect(typeof handler.handler).toBe('function');
    expect(handler.schema?.['~standard'].vendor).toBe('test');
  });

  it('reports missing files and bad exports as ConfigError', async () => {
    await expect(loadTopology(join(dir, 'missing.config.ts'))).rejects.toThrow(/topics\.orders\.groups\.billing\.handler: file not found: .*handlers\/nope\.ts/);
    await expect(loadTopology(join(dir, 'nodefault.config.ts'))).rejects.toThrow(/has no default export/);
    await expect(loadTopology(join(dir, 'nope.config.ts'))).rejects.toThrow(ConfigError);
    await expect(loadHandler(join(dir, 'nodefault.ts'))).rejects.toThrow(/must export its handler as default/);
    await expect(loadHandler(join(dir, 'badschema.ts'))).rejects.toThrow(/not a Standard Schema/);
  });
});
