/**
 * `omniqueue provision --prune` on the real NATS JetStream: on a declared topic it deletes the
 * durable consumers the topology does not declare, and nothing else (not the declared groups, not
 * the dead-letter streams, not another topic's consumers); a consumer with a worker attached blocks
 * the whole run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durableName, NatsAdapter, streamName } from '../../adapters/nats/NatsAdapter.js';
import { provision } from '../provisionCli.js';
import { NATS_SERVERS, natsMissing } from '../brokers/nats.js';

const missing = await natsMissing();
const suffix = randomBytes(4).toString('hex');
const topic = `prune_${suffix}`;
const other = `prune_other_${suffix}`;
const streams = [topic, other, `${topic}.alpha.dlq`, `${topic}.beta.dlq`];

describe.skipIf(missing !== undefined)(`provision --prune on NATS JetStream${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let dir: string;
  let config: string;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let adapter: NatsAdapter;
  const durables = async (name: string): Promise<string[]> => {
    const names: string[] = [];
    for await (const info of jsm.consumers.list(streamName(name))) names.push(info.name);
    return names.sort();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'omniqueue-nats-prune-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(dir, 'noop.ts'), 'export default () => {};\n');
    config = join(dir, 'nats.config.ts');
    writeFileSync(
      config,
      `export default { adapter: { name: 'nats', servers: ${JSON.stringify(NATS_SERVERS)} }, topics: { ${JSON.stringify(topic)}: { groups: { alpha: { handler: './noop.ts' }, beta: { handler: './noop.ts' } } } } };\n`,
    );
    nc = await connect({ servers: NATS_SERVERS });
    jsm = await jetstreamManager(nc);
    adapter = new NatsAdapter({ servers: NATS_SERVERS });
    await adapter.connect();
  });

  afterAll(async () => {
    await adapter?.deleteTopics(streams).catch(() => undefined);
    await adapter?.close();
    await nc?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('plans the undeclared group only, deletes it, keeps everything else, and is idempotent', async () => {
    expect((await provision('--config', config)).code).toBe(0);
    await adapter.ensure({ topic, group: 'gamma.old' });
    await adapter.ensure({ topic: other, group: 'stray' });
    expect(await durables(topic)).toEqual(['alpha', 'beta', durableName('gamma.old')].sort());

    const dry = await provision('--config', config, '--prune', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`- delete     durable consumer ${streamName(topic)}/${durableName('gamma.old')}`);
    expect(dry.stdout.match(/- delete/g)).toHaveLength(1);
    expect(dry.stdout).toContain('0 to create, 0 to update, 8 unchanged, 1 to delete.');
    expect(dry.stdout).toContain('Dry run: nothing changed.');
    expect(await durables(topic)).toEqual(['alpha', 'beta', durableName('gamma.old')].sort());

    const applied = await provision('--config', config, '--prune');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Deleted 1 of 1 groups.');
    expect(await durables(topic)).toEqual(['alpha', 'beta']);
    expect(await durables(`${topic}.alpha.dlq`)).toEqual([durableName('dlq')]);
    expect(await durables(`${topic}.beta.dlq`)).toEqual([durableName('dlq')]);
    expect(await durables(other)).toEqual(['stray']);

    const again = await provision('--config', config, '--prune');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('0 to create, 0 to update, 8 unchanged, 0 to delete.');
    expect(again.stdout).toContain('Deleted 0 of 0 groups.');
  });

  it('a group with a worker attached blocks the run: nothing is deleted and nothing created', async () => {
    await adapter.ensure({ topic, group: 'busy' });
    const consumption = await adapter.consume({ topic, group: 'busy', ensure: false, prefetch: 1, ordered: false }, () => undefined);
    try {
      await expect.poll(async () => (await jsm.consumers.info(streamName(topic), 'busy')).num_waiting, { timeout: 5_000 }).toBeGreaterThan(0);
      const result = await provision('--config', config, '--prune');
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`! blocked    durable consumer ${streamName(topic)}/busy`);
      expect(result.stderr).toContain('Nothing was deleted, nothing was changed.');
      expect(await durables(topic)).toEqual(['alpha', 'beta', 'busy']);
    } finally {
      await consumption.close();
    }
  });

  it('planPrune of a topic without a stream finds nothing', async () => {
    expect(await adapter.planPrune(`prune_absent_${suffix}`, [])).toEqual([]);
  });
});
