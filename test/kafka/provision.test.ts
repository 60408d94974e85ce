/**
 * Provisioning plans on the real Kafka: create, unchanged, and more partitions as an update; and
 * `omniqueue provision --prune`, which deletes the undeclared consumer groups of a declared topic
 * with their retry topics, and nothing else.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { retryTopicName } from '../../adapters/kafka/retryTopicName.js';
import { provision } from '../provisionCli.js';
import { GroupInUseError } from '../../runtime/errors.js';
import { KAFKA_BROKERS, kafkaAvailable } from '../brokers/kafka.js';
import { fresh, plainKafka, testAdapter } from './kafkaTestKit.js';

const available = await kafkaAvailable();

describe.skipIf(!available)('Kafka provisioning plan', () => {
  const topic = fresh('provision');
  const adapter = testAdapter();
  afterAll(async () => {
    const admin = plainKafka().admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await adapter.close();
  });

  it('plans a create, then unchanged, then a partition increase that ensure applies', async () => {
    await adapter.connect();
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 2 } })).toEqual([{ action: 'create', resource: `topic ${topic}`, detail: '2 partitions' }]);
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 2 } })).toEqual([{ action: 'create', resource: `topic ${topic}`, detail: '2 partitions' }]);
    await adapter.ensure({ topic, createOptions: { numPartitions: 2 } });
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 2 } })).toEqual([{ action: 'unchanged', resource: `topic ${topic} (2 partitions)` }]);
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 4 } })).toEqual([{ action: 'update', resource: `topic ${topic}`, detail: 'partitions 2 → 4' }]);
    const second = testAdapter();
    await second.connect();
    await second.ensure({ topic, createOptions: { numPartitions: 4 } });
    await second.close();
    expect(await adapter.plan({ topic, createOptions: { numPartitions: 4 } })).toEqual([{ action: 'unchanged', resource: `topic ${topic} (4 partitions)` }]);
  });
});

describe.skipIf(!available)('Kafka provision --prune', () => {
  const topic = fresh('prune');
  const other = fresh('prune_other');
  const [alpha, beta, gamma, stray, shared, busy] = ['alpha', 'beta', 'gamma', 'stray', 'shared', 'busy'].map((name) => `${topic}_${name}`) as [string, string, string, string, string, string];
  const topics = [topic, other, `${topic}.${alpha}.dlq`, `${topic}.${beta}.dlq`, retryTopicName(topic, gamma), retryTopicName(topic, busy)];
  const admin = plainKafka().admin();
  const adapter = testAdapter();
  const dir = mkdtempSync(join(tmpdir(), 'omniqueue-kafka-prune-'));
  const config = join(dir, 'kafka.config.ts');
  /** A short-lived admin per look-up: a long-lived kafkajs admin keeps asking for the metadata of topics it saw, deleted ones too. */
  const withAdmin = async <T>(use: (fresh: typeof admin) => Promise<T>): Promise<T> => {
    const fresh = plainKafka('prune-check').admin();
    await fresh.connect();
    try {
      return await use(fresh);
    } finally {
      await fresh.disconnect();
    }
  };
  const groupsOf = (name: string): Promise<string[]> =>
    withAdmin(async (look) => {
      const { groups } = await look.listGroups();
      const found: string[] = [];
      for (const { groupId } of groups.filter((group) => group.groupId.startsWith(topic))) {
        const offsets = await look.fetchOffsets({ groupId });
        if (offsets.some((entry) => entry.topic === name && entry.partitions.some((partition) => partition.offset !== '-1'))) found.push(groupId);
      }
      return found.sort();
    });
  const commit = (groupId: string, name: string) => withAdmin((look) => look.setOffsets({ groupId, topic: name, partitions: [{ partition: 0, offset: '0' }] }));
  const listTopics = () => withAdmin((look) => look.listTopics());

  afterAll(async () => {
    await admin.deleteGroups([alpha, beta, gamma, stray, shared, busy]).catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    await adapter.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('plans the undeclared group and its retry topic only, deletes them, keeps the rest, and is idempotent', async () => {
    await admin.connect();
    await adapter.connect();
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(dir, 'noop.ts'), 'export default () => {};\n');
    writeFileSync(
      config,
      `export default { adapter: { name: 'kafka', brokers: ${JSON.stringify(KAFKA_BROKERS)} }, topics: { ${JSON.stringify(topic)}: { createOptions: { numPartitions: 1 }, groups: { ${JSON.stringify(alpha)}: { handler: './noop.ts' }, ${JSON.stringify(beta)}: { handler: './noop.ts' } } } } };\n`,
    );
    expect((await provision('--config', config)).code).toBe(0);
    await adapter.ensure({ topic: other, createOptions: { numPartitions: 1 } });
    await adapter.ensure({ topic: retryTopicName(topic, gamma), createOptions: { numPartitions: 1 } });
    for (const group of [alpha, beta, gamma]) await commit(group, topic);
    await commit(gamma, retryTopicName(topic, gamma));
    await commit(stray, other);
    expect(await groupsOf(topic)).toEqual([alpha, beta, gamma]);

    const dry = await provision('--config', config, '--prune', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`- delete     consumer group ${gamma} (offsets on ${topic})`);
    expect(dry.stdout).toContain(`- delete     topic ${retryTopicName(topic, gamma)} (retry topic of group ${gamma})`);
    expect(dry.stdout.match(/- delete/g)).toHaveLength(2);
    expect(dry.stdout).toContain('2 to delete.');
    expect(await groupsOf(topic)).toEqual([alpha, beta, gamma]);
    expect(await listTopics()).toContain(retryTopicName(topic, gamma));

    const applied = await provision('--config', config, '--prune');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Deleted 1 of 1 groups.');
    expect(await groupsOf(topic)).toEqual([alpha, beta]);
    const left = await listTopics();
    expect(left).not.toContain(retryTopicName(topic, gamma));
    expect(left).toEqual(expect.arrayContaining([topic, other, `${topic}.${alpha}.dlq`, `${topic}.${beta}.dlq`]));
    expect(await groupsOf(other)).toEqual([stray]);

    const again = await provision('--config', config, '--prune');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(', 0 to delete.');
  });

  it('a group that also reads a topic outside the topology is blocked: the run changes nothing', async () => {
    await commit(shared, topic);
    await commit(shared, other);
    const result = await provision('--config', config, '--prune');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`! blocked    consumer group ${shared} (offsets on ${topic})  (not deleted: it also has offsets on ${other}`);
    expect(result.stderr).toContain('Nothing was deleted, nothing was changed.');
    expect(await groupsOf(topic)).toEqual([alpha, beta, shared]);
    await withAdmin((look) => look.deleteGroups([shared]));
  });

  it('prune() of a group with a live member rejects with GroupInUseError and keeps its retry topic', async () => {
    await adapter.ensure({ topic: retryTopicName(topic, busy), createOptions: { numPartitions: 1 } });
    const consumer = plainKafka('prune-busy').consumer({ groupId: busy, sessionTimeout: 6_000, heartbeatInterval: 300 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    let joined!: () => void;
    const hasJoined = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => joined());
    await consumer.run({ eachMessage: async () => undefined });
    try {
      await hasJoined;
      const target = { topic, group: busy, changes: [{ action: 'delete' as const, resource: `consumer group ${busy}` }, { action: 'delete' as const, resource: `topic ${retryTopicName(topic, busy)} (retry topic of group ${busy})` }] };
      await expect(adapter.prune(target)).rejects.toBeInstanceOf(GroupInUseError);
      expect(await listTopics()).toContain(retryTopicName(topic, busy));
    } finally {
      await consumer.disconnect();
    }
  });
});
