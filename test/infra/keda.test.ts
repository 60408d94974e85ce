/**
 * `generateKeda` / `omniqueue infra keda`: for every adapter with a KEDA scaler, the YAML parses
 * (yaml package), each worker group gets a ScaledObject whose trigger uses the right scaler type,
 * the documented metadata field names and the broker-side names the adapter itself uses; secrets
 * stay in the Secret. Plus the example Dockerfile that the ScaledObjects scale.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { groupQueueName } from '../../adapters/rabbitmq/RabbitMQAdapter.js';
import { durableName, streamName } from '../../adapters/nats/NatsAdapter.js';
import { generateKeda, type KubernetesObject } from '../../infra/keda/index.js';
import { run } from '../../runtime/cli/program.js';
import { resolveTopology, type AdapterSettings } from '../../runtime/topology.js';
import { DEFAULT_WORKER_PORT } from '../../runtime/worker/Worker.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const examples = join(root, 'examples/orders/');

/** The orders topology (notifications on Lambda) on a given adapter; one topic with a dot to exercise name mapping. */
function topology(adapter: AdapterSettings) {
  return resolveTopology(
    {
      adapter,
      topics: {
        orders: {
          groups: {
            billing: { handler: './handlers/billing.ts', concurrency: 8 },
            inventory: { handler: './handlers/inventory.ts' },
            notifications: { handler: './handlers/notifications.ts', runtime: 'lambda' },
          },
        },
        'shop.events': { groups: { audit: { handler: './handlers/notifications.ts' } } },
      },
    },
    examples,
  );
}

async function manifests(adapter: AdapterSettings): Promise<{ objects: KubernetesObject[]; yaml: string }> {
  const result = await generateKeda(topology(adapter), { namespace: 'shop' });
  const documents = parseAllDocuments(result.yaml);
  for (const document of documents) expect(document.errors).toEqual([]);
  const objects = documents.map((document) => document.toJS() as KubernetesObject);
  expect(objects).toEqual(result.objects);
  return { objects, yaml: result.yaml };
}

function scaledObjects(objects: readonly KubernetesObject[]) {
  return objects.filter((object) => object.kind === 'ScaledObject') as (KubernetesObject & {
    spec: { scaleTargetRef: { name: string }; triggers: { type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }[] };
  })[];
}

describe('omniqueue infra keda', () => {
  const expectations: { adapter: AdapterSettings; type: string; metadata: (topic: string, group: string, target: string) => Record<string, string>; auth: boolean }[] = [
    {
      adapter: { name: 'kafka', brokers: ['kafka-0:9092', 'kafka-1:9092'] },
      type: 'kafka',
      metadata: (topic, group, target) => ({ bootstrapServers: 'kafka-0:9092,kafka-1:9092', consumerGroup: group, topic, lagThreshold: target, offsetResetPolicy: 'latest' }),
      auth: false,
    },
    {
      adapter: { name: 'rabbitmq', url: 'amqp://app:s3cret-pw@rabbit:5672' },
      type: 'rabbitmq',
      metadata: (topic, group, target) => ({ protocol: 'amqp', queueName: groupQueueName(topic, group), mode: 'QueueLength', value: target }),
      auth: true,
    },
    {
      adapter: { name: 'nats', servers: 'nats://nats.messaging:4222' },
      type: 'nats-jetstream',
      metadata: (topic, group, target) => ({ natsServerMonitoringEndpoint: 'nats.messaging:8222', account: '$G', stream: streamName(topic), consumer: durableName(group), lagThreshold: target }),
      auth: false,
    },
    {
      adapter: { name: 'pulsar', url: 'http://pulsar:8080', tenant: 'acme', namespace: 'shop' },
      type: 'pulsar',
      metadata: (topic, group, target) => ({ adminURL: 'http://pulsar:8080', topic: `persistent://acme/shop/${topic}`, subscription: group, msgBacklogThreshold: target }),
      auth: false,
    },
    {
      adapter: { name: 'sqs', region: 'eu-west-1' },
      type: 'aws-sqs-queue',
      metadata: (topic, group, target) => ({ queueURL: `${topic.replace(/\./g, '_')}-${group}`, queueLength: target, awsRegion: 'eu-west-1' }),
      auth: true,
    },
    {
      adapter: { name: 'servicebus', connectionString: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s3cret-pw' },
      type: 'azure-servicebus',
      metadata: (topic, group, target) => ({ topicName: topic, subscriptionName: group, messageCount: target }),
      auth: true,
    },
    {
      adapter: { name: 'redis-streams', url: 'redis://:s3cret-pw@redis.cache:6380', prefix: 'oq:' },
      type: 'redis-streams',
      metadata: (topic, group, target) => ({ address: 'redis.cache:6380', stream: `oq:${topic}`, consumerGroup: group, pendingEntriesCount: target }),
      auth: true,
    },
    {
      adapter: { name: 'bullmq', url: 'redis://:s3cret-pw@redis.jobs:6379' },
      type: 'redis',
      metadata: (topic, group, target) => ({ address: 'redis.jobs:6379', listName: `bull:${topic}.${group}:wait`, listLength: target }),
      auth: true,
    },
    {
      adapter: { name: 'artemis', host: 'artemis.messaging', username: 'app', password: 's3cret-pw' },
      type: 'artemis-queue',
      metadata: (topic, group, target) => ({
        managementEndpoint: 'artemis.messaging:8161',
        brokerName: '0.0.0.0',
        brokerAddress: topic,
        queueName: `${topic}.${group}`,
        queueLength: target,
        restApiTemplate:
          'http://<<managementEndpoint>>/console/jolokia/read/org.apache.activemq.artemis:broker="<<brokerName>>",component=addresses,address="<<brokerAddress>>",subcomponent=queues,routing-type="multicast",queue="<<queueName>>"/MessageCount',
      }),
      auth: true,
    },
  ];

  for (const { adapter, type, metadata, auth } of expectations) {
    it(`${adapter.name}: a ${type} ScaledObject per worker group with the adapter's names`, async () => {
      const { objects, yaml } = await manifests(adapter);
      const scaled = scaledObjects(objects);
      expect(scaled.map((object) => object.metadata.name)).toEqual(['omniqueue-orders-billing', 'omniqueue-orders-inventory', 'omniqueue-shop-events-audit']);
      const targets: Record<string, [string, string, string]> = {
        'omniqueue-orders-billing': ['orders', 'billing', '8'],
        'omniqueue-orders-inventory': ['orders', 'inventory', '16'],
        'omniqueue-shop-events-audit': ['shop.events', 'audit', '16'],
      };
      for (const object of scaled) {
        expect(object.apiVersion).toBe('keda.sh/v1alpha1');
        expect(object.metadata.namespace).toBe('shop');
        expect(object.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        expect(object.spec).toMatchObject({ scaleTargetRef: { name: object.metadata.name }, minReplicaCount: 0, maxReplicaCount: 10 });
        const [trigger] = object.spec.triggers;
        expect(trigger!.type).toBe(type);
        expect(trigger!.metadata).toEqual(metadata(...targets[object.metadata.name]!));
        // KEDA's trigger metadata is a map of strings.
        for (const value of Object.values(trigger!.metadata)) expect(typeof value).toBe('string');
        expect(trigger!.authenticationRef !== undefined).toBe(auth);
      }
      const authentication = objects.filter((object) => object.kind === 'TriggerAuthentication');
      expect(authentication).toHaveLength(auth ? 1 : 0);
      if (auth) expect(scaled[0]!.spec.triggers[0]!.authenticationRef!.name).toBe(authentication[0]!.metadata.name);
      expect(yaml).not.toContain('s3cret-pw');
    });
  }

  it('reads secrets from the Secret through a TriggerAuthentication', async () => {
    const { objects } = await manifests({ name: 'rabbitmq', url: 'amqp://app:s3cret-pw@rabbit:5672' });
    expect(objects[0]).toMatchObject({ kind: 'TriggerAuthentication', metadata: { name: 'omniqueue-rabbitmq' }, spec: { secretTargetRef: [{ parameter: 'host', name: 'omniqueue-broker', key: 'url' }] } });
  });

  it('refuses an adapter without a scaler, saying why', async () => {
    await expect(generateKeda(topology({ name: 'memory' }))).rejects.toThrow(/No KEDA scaler for the 'memory' adapter.*cannot scale out/);
  });

  describe('the CLI', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniqueue-keda-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('writes the manifests for a topology file, with runtime overrides and options', async () => {
      const config = join(dir, 'omniqueue.config.ts');
      writeFileSync(
        config,
        [
          `import { defineTopology } from ${JSON.stringify(join(root, 'runtime/topology.ts'))};`,
          `export default defineTopology({`,
          `  adapter: { name: 'rabbitmq', url: 'amqp://app:s3cret-pw@rabbit:5672' },`,
          `  topics: { orders: { groups: {`,
          `    billing: { handler: ${JSON.stringify(join(examples, 'handlers/billing.ts'))} },`,
          `    inventory: { handler: ${JSON.stringify(join(examples, 'handlers/inventory.ts'))} },`,
          `  } } },`,
          `});`,
        ].join('\n'),
      );
      const out = join(dir, 'keda.yaml');
      const stdout: string[] = [];
      const stderr: string[] = [];
      const io = { stdout: { write: (text: string) => stdout.push(text) }, stderr: { write: (text: string) => stderr.push(text) } } as never;
      const code = await run(['node', 'omniqueue', 'infra', 'keda', '--config', config, '--out', out, '--runtime', 'orders/inventory=lambda', '--max-replicas', '4', '--target', '20', '-m', 'vhostName=/shop'], io);
      expect(stderr.join('')).toBe('');
      expect(code).toBe(0);
      expect(stdout.join('')).toMatch(/1 ScaledObject\(s\), scaler rabbitmq/);
      const objects = parseAllDocuments(readFileSync(out, 'utf8')).map((document) => document.toJS() as KubernetesObject);
      const [scaled] = scaledObjects(objects);
      expect(scaled!.metadata.name).toBe('omniqueue-orders-billing');
      expect(scaled!.spec).toMatchObject({ maxReplicaCount: 4, triggers: [{ metadata: { queueName: 'orders.billing', value: '20', vhostName: '/shop' } }] });

      const bad = await run(['node', 'omniqueue', 'infra', 'keda', '--config', config, '--runtime', 'orders/nope=lambda', '-o', '-'], io);
      expect(bad).toBe(2);
      expect(stderr.join('')).toMatch(/no such group/);
    });
  });
});

describe('examples/orders/Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'examples/orders/Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.trim().split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
  const exec = (keyword: string) => JSON.parse(instructions.find((instruction) => instruction.keyword === keyword)!.args) as string[];

  it('builds on Node 22, copies only paths that exist, runs as node and exposes the worker port', () => {
    const from = instructions.filter((instruction) => instruction.keyword === 'FROM');
    expect(from.length).toBeGreaterThan(0);
    for (const { args } of from) expect(args).toMatch(/^node:22/);
    for (const { args } of instructions.filter((instruction) => instruction.keyword === 'COPY' && !instruction.args.startsWith('--from'))) {
      const sources = args.split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(join(root, source)), source).toBe(true);
    }
    expect(instructions.find((instruction) => instruction.keyword === 'USER')?.args).toBe('node');
    expect(instructions.find((instruction) => instruction.keyword === 'EXPOSE')?.args).toBe(String(DEFAULT_WORKER_PORT));
    expect(instructions.some((instruction) => instruction.keyword === 'HEALTHCHECK' && instruction.args.includes(`:${DEFAULT_WORKER_PORT}/healthz`))).toBe(true);
  });

  it("runs `omniqueue worker` with the example topology (the image's command works here)", async () => {
    const entrypoint = exec('ENTRYPOINT');
    const command = exec('CMD');
    expect(entrypoint.slice(-2)).toEqual(['runtime/cli/main.ts', 'worker']);
    expect(command).toEqual(['--config', 'examples/orders/omniqueue.config.ts']);
    const [node, ...args] = entrypoint;
    expect(node).toBe('node');
    const { stdout } = await promisify(execFile)(process.execPath, [...args, '--help'], { cwd: root, timeout: 60_000 });
    expect(stdout).toMatch(/--group <name>/);
  });
});
