/**
 * Provisioning on the real Artemis: `plan()` reads the broker through the management address and
 * changes nothing; it says `create` before `ensure` and `unchanged` after. Then the same through
 * `omniqueue provision` (dry run, apply, idempotent re-run) on a topology file, and `--prune`, which
 * destroys the undeclared queues of a declared topic's address, and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection, type ConnectionOptions } from 'rhea-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtemisAdapter } from '../../adapters/artemis/ArtemisAdapter.js';
import { ArtemisManagement } from '../../adapters/artemis/ArtemisManagement.js';
import { queueName } from '../../adapters/artemis/names.js';
import { provision } from '../provisionCli.js';
import { ConfigError, GroupInUseError } from '../../runtime/errors.js';
import { ARTEMIS, artemisMissing } from '../brokers/artemis.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { ARTEMIS_LOCK } from './artemisLock.js';
import { deleteArtemisAddresses, deleteArtemisQueues, queueStats } from './queueStats.js';

const missing = await artemisMissing();
// Shared lock: the fault tests' broker restart waits until this file is done.
const lock = missing === undefined ? await holdFileLock(ARTEMIS_LOCK, 'shared') : undefined;
const run = randomBytes(4).toString('hex');
const queues: string[] = [];

describe.skipIf(missing !== undefined)(`artemis provisioning${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let adapter: ArtemisAdapter;
  let dir: string;

  beforeAll(async () => {
    adapter = new ArtemisAdapter(ARTEMIS);
    await adapter.connect();
    dir = mkdtempSync(join(tmpdir(), 'omniqueue-artemis-provision-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(dir, 'noop.ts'), 'export default () => {};\n');
  });

  afterAll(async () => {
    await adapter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (missing === undefined) {
      await deleteArtemisQueues(queues);
      await deleteArtemisAddresses([`artemis_plan_topic_${run}`]);
    }
    await lock?.[Symbol.asyncDispose]();
  });

  it('plan says create for a missing address and queue, changes nothing, and says unchanged after ensure', async () => {
    const topic = `artemis_plan_${run}`;
    const queue = queueName(topic, 'billing');
    queues.push(queue);
    const request = { topic, group: 'billing' };
    const expected = (action: string) => [
      { action, resource: `address ${topic} (multicast)` },
      { action, resource: `queue ${queue} (multicast, durable) on address ${topic}` },
    ];

    expect(await adapter.plan(request)).toEqual(expected('create'));
    // Changed nothing: the queue is still missing, and asking again gives the same plan.
    expect(await queueStats(queue)).toBeUndefined();
    expect(await adapter.plan(request)).toEqual(expected('create'));

    await adapter.ensure(request);
    expect(await queueStats(queue)).toEqual({ messageCount: 0, deliveringCount: 0 });
    expect(await adapter.plan(request)).toEqual(expected('unchanged'));

    // A second group on the same topic: the address is there, its queue is not.
    expect(await adapter.plan({ topic, group: 'audit' })).toEqual([
      { action: 'unchanged', resource: `address ${topic} (multicast)` },
      { action: 'create', resource: `queue ${queueName(topic, 'audit')} (multicast, durable) on address ${topic}` },
    ]);
  });

  it('a topic without a group: plan says create, ensure creates the multicast address, then unchanged', async () => {
    const topic = `artemis_plan_topic_${run}`;
    expect(await adapter.plan({ topic })).toEqual([{ action: 'create', resource: `address ${topic} (multicast)` }]);
    expect(await adapter.plan({ topic })).toEqual([{ action: 'create', resource: `address ${topic} (multicast)` }]);
    await adapter.ensure({ topic });
    expect(await adapter.plan({ topic })).toEqual([{ action: 'unchanged', resource: `address ${topic} (multicast)` }]);
    // A fresh adapter (nothing cached) ensures the existing address again without an error.
    const other = new ArtemisAdapter(ARTEMIS);
    await other.connect();
    try {
      await other.ensure({ topic });
    } finally {
      await other.close();
    }
  });

  it('plan refuses a queue of that name bound to another address', async () => {
    const topic = `artemis_plan_clash_${run}`;
    const elsewhere = `artemis_plan_other_${run}`;
    // Queue `<topic>.g` on the wrong address, as a hand-made broker.xml might have it.
    const queue = queueName(topic, 'g');
    queues.push(queue);
    await adapter.ensure({ topic: elsewhere, group: 'x' });
    queues.push(queueName(elsewhere, 'x'));
    const connection = new Connection({ ...ARTEMIS, transport: 'tcp', reconnect: false } as ConnectionOptions);
    await connection.open();
    try {
      await new ArtemisManagement(connection).invoke('createQueue', [JSON.stringify({ name: queue, address: elsewhere, 'routing-type': 'MULTICAST', durable: true }), true]);
    } finally {
      await connection.close().catch(() => {});
    }
    await expect(adapter.plan({ topic, group: 'g' })).rejects.toBeInstanceOf(ConfigError);
  });

  it('omniqueue provision: dry run changes nothing, the real run creates, a re-run finds everything unchanged', async () => {
    const topic = `artemis_prov_${run}`;
    queues.push(queueName(topic, 'billing'), queueName(`${topic}.billing.dlq`, 'dlq'));
    const config = join(dir, 'artemis.config.ts');
    writeFileSync(
      config,
      `export default { adapter: { name: 'artemis', ...${JSON.stringify(ARTEMIS)} }, topics: { ${JSON.stringify(topic)}: { groups: { billing: { handler: './noop.ts' } } } } };\n`,
    );
    const dry = await provision('--config', config, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`+ create     address ${topic} (multicast)`);
    expect(dry.stdout).toContain(`+ create     queue ${topic}.billing (multicast, durable) on address ${topic}`);
    expect(dry.stdout).toContain(`+ create     queue ${topic}.billing.dlq.dlq (multicast, durable) on address ${topic}.billing.dlq`);
    expect(dry.stdout).toContain('4 to create, 0 to update, 0 unchanged.');
    expect(dry.stdout).toContain('Dry run: nothing changed.');
    expect(await queueStats(queueName(topic, 'billing'))).toBeUndefined();

    const applied = await provision('--config', config);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Applied 2 of 2 resource sets.');
    expect(await queueStats(queueName(topic, 'billing'))).toEqual({ messageCount: 0, deliveringCount: 0 });
    expect(await queueStats(queueName(`${topic}.billing.dlq`, 'dlq'))).toEqual({ messageCount: 0, deliveringCount: 0 });

    const again = await provision('--config', config);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('0 to create, 0 to update, 4 unchanged.');
    expect(again.stdout).toContain('Applied 0 of 2 resource sets.');
  });

  it('omniqueue provision --prune: plans and destroys the undeclared queue only, idempotently; a queue with a consumer blocks the run', async () => {
    const topic = `artemis_prune_${run}`;
    const other = `artemis_prune_other_${run}`;
    const [alpha, beta, gamma, stray, busy] = [queueName(topic, 'alpha'), queueName(topic, 'beta'), queueName(topic, 'gamma'), queueName(other, 'stray'), queueName(topic, 'busy')];
    queues.push(alpha, beta, gamma, stray, busy, queueName(`${topic}.alpha.dlq`, 'dlq'), queueName(`${topic}.beta.dlq`, 'dlq'));
    const config = join(dir, 'artemis-prune.config.ts');
    writeFileSync(
      config,
      `export default { adapter: { name: 'artemis', ...${JSON.stringify(ARTEMIS)} }, topics: { ${JSON.stringify(topic)}: { groups: { alpha: { handler: './noop.ts' }, beta: { handler: './noop.ts' } } } } };\n`,
    );
    expect((await provision('--config', config)).code).toBe(0);
    await adapter.ensure({ topic, group: 'gamma' });
    await adapter.ensure({ topic: other, group: 'stray' });
    const empty = { messageCount: 0, deliveringCount: 0 };

    const dry = await provision('--config', config, '--prune', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`- delete     queue ${gamma} (multicast, durable) on address ${topic}`);
    expect(dry.stdout.match(/- delete/g)).toHaveLength(1);
    expect(dry.stdout).toContain('Dry run: nothing changed.');
    expect(await queueStats(gamma)).toEqual(empty);

    const applied = await provision('--config', config, '--prune');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Deleted 1 of 1 groups.');
    expect(await queueStats(gamma)).toBeUndefined();
    for (const kept of [alpha, beta, stray, queueName(`${topic}.alpha.dlq`, 'dlq'), queueName(`${topic}.beta.dlq`, 'dlq')]) expect(await queueStats(kept)).toEqual(empty);

    const again = await provision('--config', config, '--prune');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('0 to create, 0 to update, 8 unchanged, 0 to delete.');

    const consumption = await adapter.consume({ topic, group: 'busy', ensure: true, prefetch: 1, ordered: false }, () => undefined);
    try {
      const blocked = await provision('--config', config, '--prune');
      expect(blocked.code).toBe(1);
      expect(blocked.stdout).toContain(`! blocked    queue ${busy} (multicast, durable) on address ${topic}`);
      expect(blocked.stderr).toContain('Nothing was deleted, nothing was changed.');
      await expect(adapter.prune({ topic, group: busy, changes: [] })).rejects.toBeInstanceOf(GroupInUseError);
      expect(await queueStats(busy)).toEqual(empty);
    } finally {
      await consumption.close();
    }
  });
});
