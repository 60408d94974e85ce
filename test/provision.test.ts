/** `omniqueue provision` against the real RabbitMQ and NATS: plan first, idempotent, dry run changes nothing; `--prune` refused on RabbitMQ, and its planning on the memory adapter. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durableName, streamName } from '../adapters/nats/NatsAdapter.js';
import { MemoryAdapter } from '../adapters/memory/MemoryAdapter.js';
import { provision } from './provisionCli.js';
import { GroupInUseError } from '../runtime/errors.js';
import { applyPrune, desiredRequests, formatPlan, planPrune, pruneScope } from '../runtime/provision/provisionTopology.js';
import { loadTopology } from '../runtime/topology.js';
import { AMQP_URL, deleteRabbitTopics, rabbitMissing } from './brokers/rabbitmq.js';
import { NATS_SERVERS, natsMissing } from './brokers/nats.js';

const suffix = randomBytes(4).toString('hex');
let dir: string;

function topologyFile(name: string, adapter: string, maxAttempts: number): string {
  const file = join(dir, `${name}.config.ts`);
  writeFileSync(
    file,
    `export default { adapter: ${adapter}, topics: { ${JSON.stringify(`prov_${suffix}`)}: { groups: { billing: { handler: './noop.ts', retry: { maxAttempts: ${maxAttempts} } } } } } };\n`,
  );
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'omniqueue-provision-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'noop.ts'), 'export default () => {};\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rabbit = await rabbitMissing();
describe.skipIf(rabbit !== undefined)(`provision on RabbitMQ${rabbit ? ` — skipped: ${rabbit}` : ''}`, () => {
  afterAll(() => deleteRabbitTopics([`prov_${suffix}`, `prov_${suffix}.billing.dlq`]));

  it('prints the plan, changes nothing on --dry-run, creates on the real run, then reports everything unchanged', async () => {
    const config = topologyFile('rabbit', `{ name: 'rabbitmq', url: ${JSON.stringify(AMQP_URL)} }`, 5);
    const dry = await provision('--config', config, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`+ create     exchange prov_${suffix}`);
    expect(dry.stdout).toContain(`+ create     queue prov_${suffix}.billing bound to prov_${suffix}`);
    expect(dry.stdout).toContain(`+ create     queue prov_${suffix}.billing.dlq.dlq`);
    expect(dry.stdout).toContain('Dry run: nothing changed.');

    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await expect(channel.checkQueue(`prov_${suffix}.billing`)).rejects.toThrow(/NOT_FOUND/);

      const applied = await provision('--config', config);
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.stdout).toContain('Applied 2 of 2 resource sets.');
      const check = await connection.createChannel();
      expect((await check.checkQueue(`prov_${suffix}.billing`)).queue).toBe(`prov_${suffix}.billing`);

      const again = await provision('--config', config);
      expect(again.stdout).toContain('0 to create, 0 to update, 4 unchanged.');
      expect(again.stdout).toContain('Applied 0 of 2 resource sets.');
    } finally {
      await connection.close();
    }
  });

  it('refuses --prune (AMQP cannot list queues) without touching anything, not even the creates', async () => {
    await deleteRabbitTopics([`prov_${suffix}`, `prov_${suffix}.billing.dlq`]);
    const result = await provision('--config', topologyFile('prune', `{ name: 'rabbitmq', url: ${JSON.stringify(AMQP_URL)} }`, 5), '--prune');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--prune is not supported by the 'rabbitmq' adapter: it cannot list the groups that exist on the broker");
    expect(result.stderr).toContain('Nothing was deleted, nothing was changed');
    expect(result.stdout).toBe('');
    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await expect(channel.checkQueue(`prov_${suffix}.billing`)).rejects.toThrow(/NOT_FOUND/);
    } finally {
      await connection.close();
    }
  });
});

const nats = await natsMissing();
describe.skipIf(nats !== undefined)(`provision on NATS JetStream${nats ? ` — skipped: ${nats}` : ''}`, () => {
  const topic = `prov_${suffix}`;
  afterAll(async () => {
    const connection = await connect({ servers: NATS_SERVERS });
    const jsm = await jetstreamManager(connection);
    for (const name of [topic, `${topic}.billing.dlq`]) await jsm.streams.delete(streamName(name)).catch(() => undefined);
    await connection.close();
  });

  it('creates the stream and durable consumer, then updates max deliver when the retry policy changes', async () => {
    const first = await provision('--config', topologyFile('nats5', `{ name: 'nats', servers: ${JSON.stringify(NATS_SERVERS)} }`, 5));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`+ create     stream ${streamName(topic)}`);
    const changed = await provision('--config', topologyFile('nats8', `{ name: 'nats', servers: ${JSON.stringify(NATS_SERVERS)} }`, 8), '--dry-run');
    expect(changed.stdout).toMatch(new RegExp(`~ update +durable consumer ${streamName(topic)}/${durableName('billing')}`));
    const connection = await connect({ servers: NATS_SERVERS });
    try {
      const jsm = await jetstreamManager(connection);
      const before = await jsm.consumers.info(streamName(topic), durableName('billing'));
      await provision('--config', topologyFile('nats8b', `{ name: 'nats', servers: ${JSON.stringify(NATS_SERVERS)} }`, 8));
      const after = await jsm.consumers.info(streamName(topic), durableName('billing'));
      expect(after.config.max_deliver).toBeGreaterThan(before.config.max_deliver!);
    } finally {
      await connection.close();
    }
  });
});

describe('prune on the memory adapter', () => {
  it('plans and deletes only the undeclared groups of the declared topics; a group with a consumer is blocked', async () => {
    const topology = await loadTopology(topologyFile('memory', `{ name: 'memory' }`, 5));
    const adapter = new MemoryAdapter();
    const topic = `prov_${suffix}`;
    for (const request of desiredRequests(topology)) await adapter.ensure(request);
    await adapter.ensure({ topic, group: 'gone' });
    await adapter.ensure({ topic: 'elsewhere', group: 'stray' });
    expect(pruneScope(topology)).toEqual([{ topic, keepGroups: ['billing'] }]);

    const prunes = await planPrune(adapter, topology);
    expect(prunes).toEqual([{ topic, group: 'gone', changes: [{ action: 'delete', resource: `group ${topic}/gone` }] }]);
    expect(formatPlan('memory', [], prunes)).toContain(`  - delete     group ${topic}/gone`);
    expect(await applyPrune(adapter, prunes)).toEqual({ deleted: 1, failures: [] });
    expect(await planPrune(adapter, topology)).toEqual([]);
    expect(await adapter.plan({ topic, group: 'billing' })).toEqual([
      { action: 'unchanged', resource: `topic ${topic}` },
      { action: 'unchanged', resource: `group ${topic}/billing` },
    ]);
    expect(await adapter.planPrune('elsewhere', [])).toHaveLength(1);

    const consumption = await adapter.consume({ topic, group: 'busy', ensure: true, prefetch: 1, ordered: false }, () => undefined);
    const [busy] = await planPrune(adapter, topology);
    expect(busy?.blockedBy).toBe('1 consumer(s) connected');
    const result = await applyPrune(adapter, [busy!]);
    expect(result.failures[0]?.error).toBeInstanceOf(GroupInUseError);
    await consumption.close();
    await adapter.close();
  });
});
