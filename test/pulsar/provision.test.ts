/**
 * Provisioning on the real Pulsar: `plan()` reads the admin REST API and changes nothing; it says
 * `create` before `ensure` and `unchanged` after. Then the same through `omniqueue provision`
 * (dry run, apply, idempotent re-run) on a topology file, and `--prune`, which deletes the
 * undeclared subscriptions of a declared topic with their retry topics, and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulsarAdapter } from '../../adapters/pulsar/PulsarAdapter.js';
import { retryTopicName } from '../../adapters/pulsar/topicNames.js';
import { provision } from '../provisionCli.js';
import { holdFileLock } from '../brokers/rabbitmq.js';
import { PULSAR_LOCK, pulsarAvailable } from '../brokers/pulsar.js';

const url = await pulsarAvailable();
// Shared lock: the fault test's broker restart waits until this file is done.
const lock = url ? await holdFileLock(PULSAR_LOCK, 'shared') : undefined;
const run = randomBytes(4).toString('hex');
const topics: string[] = [];
const full = (topic: string): string => `persistent://public/default/${topic}`;

/** The topic's subscriptions as the admin API lists them, or the HTTP status when it has none to list. */
async function subscriptionsOf(topic: string): Promise<string[] | number> {
  const response = await fetch(`${url}/admin/v2/persistent/public/default/${topic}/subscriptions`);
  if (response.status !== 200) {
    await response.body?.cancel();
    return response.status;
  }
  return (await response.json()) as string[];
}

describe.skipIf(!url)('pulsar provisioning', () => {
  let adapter: PulsarAdapter;
  let dir: string;

  beforeAll(async () => {
    adapter = new PulsarAdapter({ url });
    await adapter.connect();
    dir = mkdtempSync(join(tmpdir(), 'omniqueue-pulsar-provision-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(dir, 'noop.ts'), 'export default () => {};\n');
  });

  afterAll(async () => {
    await adapter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const topic of topics) {
      await fetch(`${url}/admin/v2/persistent/public/default/${topic}?force=true`, { method: 'DELETE' })
        .then((response) => response.body?.cancel())
        .catch(() => {});
    }
    await lock?.[Symbol.asyncDispose]();
  });

  it('plan says create for a missing topic and subscription, changes nothing, and says unchanged after ensure', async () => {
    const topic = `pulsar_plan_${run}`;
    topics.push(topic);
    const request = { topic, group: 'billing' };
    const expected = (action: string) => [
      { action, resource: `topic ${full(topic)}` },
      { action, resource: `subscription billing on ${full(topic)}` },
    ];

    expect(await adapter.plan(request)).toEqual(expected('create'));
    // Changed nothing: the topic is still missing (404), and asking again gives the same plan.
    expect(await subscriptionsOf(topic)).toBe(404);
    expect(await adapter.plan(request)).toEqual(expected('create'));

    await adapter.ensure(request);
    expect(await subscriptionsOf(topic)).toEqual(['billing']);
    expect(await adapter.plan(request)).toEqual(expected('unchanged'));

    // A second group on the same topic: the topic is there, its subscription is not.
    expect(await adapter.plan({ topic, group: 'audit' })).toEqual([
      { action: 'unchanged', resource: `topic ${full(topic)}` },
      { action: 'create', resource: `subscription audit on ${full(topic)}` },
    ]);
    expect(await subscriptionsOf(topic)).toEqual(['billing']);
  });

  it('a topic without a group: plan says create, ensure creates it, then unchanged', async () => {
    const topic = `pulsar_plan_topic_${run}`;
    topics.push(topic);
    expect(await adapter.plan({ topic })).toEqual([{ action: 'create', resource: `topic ${full(topic)}` }]);
    expect(await subscriptionsOf(topic)).toBe(404);
    await adapter.ensure({ topic });
    expect(await adapter.plan({ topic })).toEqual([{ action: 'unchanged', resource: `topic ${full(topic)}` }]);
    expect(await subscriptionsOf(topic)).toEqual([]);
  });

  it('omniqueue provision: dry run changes nothing, the real run creates, a re-run finds everything unchanged', async () => {
    const topic = `pulsar_prov_${run}`;
    topics.push(topic, `${topic}.billing.dlq`);
    const config = join(dir, 'pulsar.config.ts');
    writeFileSync(config, `export default { adapter: { name: 'pulsar', url: ${JSON.stringify(url)} }, topics: { ${JSON.stringify(topic)}: { groups: { billing: { handler: './noop.ts' } } } } };\n`);
    const dry = await provision('--config', config, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`+ create     topic ${full(topic)}`);
    expect(dry.stdout).toContain(`+ create     subscription billing on ${full(topic)}`);
    expect(dry.stdout).toContain(`+ create     subscription dlq on ${full(`${topic}.billing.dlq`)}`);
    expect(dry.stdout).toContain('4 to create, 0 to update, 0 unchanged.');
    expect(dry.stdout).toContain('Dry run: nothing changed.');
    expect(await subscriptionsOf(topic)).toBe(404);

    const applied = await provision('--config', config);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Applied 2 of 2 resource sets.');
    expect(await subscriptionsOf(topic)).toEqual(['billing']);
    expect(await subscriptionsOf(`${topic}.billing.dlq`)).toEqual(['dlq']);

    const again = await provision('--config', config);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('0 to create, 0 to update, 4 unchanged.');
    expect(again.stdout).toContain('Applied 0 of 2 resource sets.');
  });

  it('omniqueue provision --prune: plans and deletes the undeclared subscription and its retry topic only, idempotently', async () => {
    const topic = `pulsar_prune_${run}`;
    const other = `pulsar_prune_other_${run}`;
    topics.push(topic, other, `${topic}.alpha.dlq`, `${topic}.beta.dlq`, retryTopicName(topic, 'gamma'));
    const config = join(dir, 'pulsar-prune.config.ts');
    writeFileSync(
      config,
      `export default { adapter: { name: 'pulsar', url: ${JSON.stringify(url)} }, topics: { ${JSON.stringify(topic)}: { groups: { alpha: { handler: './noop.ts' }, beta: { handler: './noop.ts' } } } } };\n`,
    );
    expect((await provision('--config', config)).code).toBe(0);
    await adapter.ensure({ topic, group: 'gamma' });
    await adapter.ensure({ topic: retryTopicName(topic, 'gamma'), group: 'gamma' });
    await adapter.ensure({ topic: other, group: 'stray' });
    const sorted = async (name: string) => {
      const subscriptions = await subscriptionsOf(name);
      return Array.isArray(subscriptions) ? subscriptions.sort() : subscriptions;
    };

    const dry = await provision('--config', config, '--prune', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`- delete     subscription gamma on ${full(topic)}`);
    expect(dry.stdout).toContain(`- delete     topic ${full(retryTopicName(topic, 'gamma'))} (retry topic of subscription gamma)`);
    expect(dry.stdout.match(/- delete/g)).toHaveLength(2);
    expect(dry.stdout).toContain('Dry run: nothing changed.');
    expect(await sorted(topic)).toEqual(['alpha', 'beta', 'gamma']);

    const applied = await provision('--config', config, '--prune');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Deleted 1 of 1 groups.');
    expect(await sorted(topic)).toEqual(['alpha', 'beta']);
    expect(await subscriptionsOf(retryTopicName(topic, 'gamma'))).toBe(404);
    expect(await subscriptionsOf(`${topic}.alpha.dlq`)).toEqual(['dlq']);
    expect(await subscriptionsOf(`${topic}.beta.dlq`)).toEqual(['dlq']);
    expect(await subscriptionsOf(other)).toEqual(['stray']);

    const again = await provision('--config', config, '--prune');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('0 to create, 0 to update, 8 unchanged, 0 to delete.');
  });

  it('a subscription with a consumer connected blocks --prune: nothing changes', async () => {
    const topic = `pulsar_prune_busy_${run}`;
    topics.push(topic, retryTopicName(topic, 'busy'), `${topic}.keep.dlq`);
    const config = join(dir, 'pulsar-busy.config.ts');
    writeFileSync(config, `export default { adapter: { name: 'pulsar', url: ${JSON.stringify(url)} }, topics: { ${JSON.stringify(topic)}: { groups: { keep: { handler: './noop.ts' } } } } };\n`);
    const consumption = await adapter.consume({ topic, group: 'busy', ensure: true, prefetch: 1, ordered: false }, () => undefined);
    try {
      const result = await provision('--config', config, '--prune');
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`! blocked    subscription busy on ${full(topic)}`);
      expect(result.stderr).toContain('Nothing was deleted, nothing was changed.');
      expect(await subscriptionsOf(topic)).toEqual(['busy']);
    } finally {
      await consumption.close();
    }
  });
});
