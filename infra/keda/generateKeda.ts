/**
 * `omniqueue infra keda`: one KEDA `ScaledObject` per worker group, using the scaler of the
 * topology's adapter with the broker-side names the adapter itself uses, plus the
 * `TriggerAuthentication` that reads the broker's secret from a Kubernetes Secret (never inlined).
 *
 * Each group is expected to run as its own Deployment, `omniqueue worker --group <topic>/<group>`
 * (see examples/orders/Dockerfile), named by {@link KedaOptions.deploymentName}.
 *
 * @packageDocumentation
 */
import { stringify } from 'yaml';
import { sqsQueueName } from '../../adapters/sqs/names.js';
import { subscriptionEntity, topicEntity } from '../../adapters/servicebus/names.js';
import { persistentTopic } from '../../adapters/pulsar/topicNames.js';
import { ConfigError } from '../../runtime/errors.js';
import { GroupRuntime, type LoadedTopology, type ResolvedGroup } from '../../runtime/topology.js';
import { checkOverrides, effectiveRuntime, type RuntimeOverrides } from '../groups.js';

/** Options of {@link generateKeda}. */
export interface KedaOptions {
  /** Run groups on another runtime in this deployment, keyed `topic/group`. */
  readonly runtimes?: RuntimeOverrides;
  /** Kubernetes namespace of the objects. Default: none (the namespace `kubectl apply` uses). */
  readonly namespace?: string;
  /** Deployment a group scales. Default `omniqueue-<topic>-<group>` (DNS-1123). */
  readonly deploymentName?: (group: ResolvedGroup) => string;
  /** Kubernetes Secret that holds the broker's credentials. Default `omniqueue-broker`. */
  readonly secretName?: string;
  /** Messages of backlog per replica. Default: the group's `concurrency` (16 when unset). */
  readonly target?: number;
  /** `minReplicaCount`. Default 0 (scale to zero). */
  readonly minReplicaCount?: number;
  /** `maxReplicaCount`. Default 10. */
  readonly maxReplicaCount?: number;
  /** `pollingInterval` in seconds. Default 15. */
  readonly pollingInterval?: number;
  /** `cooldownPeriod` in seconds. Default 300. */
  readonly cooldownPeriod?: number;
  /** Extra or overriding trigger metadata for every group (e.g. `natsServerMonitoringEndpoint`). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A Kubernetes object as plain data. */
export interface KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly spec: Record<string, unknown>;
}

/** What {@link generateKeda} produces. */
export interface KedaManifests {
  /** Every object: the TriggerAuthentication (when the scaler needs one) first, then one ScaledObject per worker group. */
  readonly objects: readonly KubernetesObject[];
  /** The same objects as one multi-document YAML file. */
  readonly yaml: string;
  /** The KEDA scaler type used. */
  readonly scaler: string;
}

/** The KEDA scaler of each adapter that has one. */
export const KedaScaler = {
  kafka: 'kafka',
  rabbitmq: 'rabbitmq',
  nats: 'nats-jetstream',
  pulsar: 'pulsar',
  sqs: 'aws-sqs-queue',
  servicebus: 'azure-servicebus',
  'redis-streams': 'redis-streams',
  bullmq: 'redis',
  artemis: 'artemis-queue',
} as const;

/**
 * Jolokia read of one multicast queue's MessageCount. KEDA's default template reads an anycast
 * queue; a group's queue on a topic's multicast address needs `routing-type="multicast"`.
 */
const ARTEMIS_MULTICAST_TEMPLATE =
  'http://<<managementEndpoint>>/console/jolokia/read/org.apache.activemq.artemis:broker="<<brokerName>>",component=addresses,address="<<brokerAddress>>",subcomponent=queues,routing-type="multicast",queue="<<queueName>>"/MessageCount';

interface ScalerPlan {
  readonly type: string;
  readonly metadata: (group: ResolvedGroup, target: string) => Record<string, string>;
  /** TriggerAuthentication spec, if the scaler reads a secret or a pod identity. */
  readonly auth?: Record<string, unknown>;
}

/**
 * Builds the manifests. Async because the RabbitMQ and NATS queue/stream naming lives in their
 * adapter modules (loaded only for that adapter, so the names always match what the worker uses).
 */
export async function generateKeda(topology: LoadedTopology, options: KedaOptions = {}): Promise<KedaManifests> {
  checkOverrides(topology, options.runtimes);
  const adapter = topology.adapter;
  const plan = await scalerPlan(adapter, options.secretName ?? 'omniqueue-broker');
  const groups = topology.groups.filter((group) => effectiveRuntime(group, options.runtimes) === GroupRuntime.Worker);
  const namespace = options.namespace ? { namespace: options.namespace } : {};
  const labels = { 'app.kubernetes.io/part-of': 'omniqueue', 'app.kubernetes.io/managed-by': 'omniqueue-infra' };
  const authName = `omniqueue-${dns1123(adapter.name)}`;
  const objects: KubernetesObject[] = [];
  if (plan.auth) objects.push({ apiVersion: 'keda.sh/v1alpha1', kind: 'TriggerAuthentication', metadata: { name: authName, ...namespace, labels }, spec: plan.auth });

  for (const group of groups) {
    const target = options.target ?? group.config.concurrency ?? 16;
    if (!Number.isInteger(target) || target < 1) throw new ConfigError(`KEDA target must be an integer ≥ 1, got ${target}.`);
    const deployment = options.deploymentName?.(group) ?? dns1123(`omniqueue-${group.topic}-${group.group}`);
    objects.push({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: deployment, ...namespace, labels: { ...labels, 'omniqueue.dev/topic': label(group.topic), 'omniqueue.dev/group': label(group.group) } },
      spec: {
        scaleTargetRef: { name: deployment },
        pollingInterval: options.pollingInterval ?? 15,
        cooldownPeriod: options.cooldownPeriod ?? 300,
        minReplicaCount: options.minReplicaCount ?? 0,
        maxReplicaCount: options.maxReplicaCount ?? 10,
        triggers: [
          {
            type: plan.type,
            metadata: { ...plan.metadata(group, String(target)), ...options.metadata },
            ...(plan.auth ? { authenticationRef: { name: authName } } : {}),
          },
        ],
      },
    });
  }
  const header = `# Generated by \`omniqueue infra keda\`: one ScaledObject per worker group (${plan.type} scaler).\n# Each scales the Deployment running \`omniqueue worker --group <topic>/<group>\`.\n`;
  const yaml = header + objects.map((object) => stringify(object, { lineWidth: 0 })).join('---\n');
  return { objects, yaml, scaler: plan.type };
}

async function scalerPlan(adapter: LoadedTopology['adapter'], secretName: string): Promise<ScalerPlan> {
  const settings = adapter as Record<string, unknown>;
  const secret = (parameter: string, key: string) => ({ parameter, name: secretName, key });
  switch (adapter.name) {
    case 'kafka': {
      const brokers = Array.isArray(settings.brokers) ? (settings.brokers as string[]) : ['127.0.0.1:9092'];
      return {
        type: KedaScaler.kafka,
        // Kafka adapter: topic = the topic, consumer group = the group.
        metadata: (group, target) => ({ bootstrapServers: brokers.join(','), consumerGroup: group.group, topic: group.topic, lagThreshold: target, offsetResetPolicy: 'latest' }),
      };
    }
    case 'rabbitmq': {
      const { groupQueueName } = await import('../../adapters/rabbitmq/RabbitMQAdapter.js');
      return {
        type: KedaScaler.rabbitmq,
        metadata: (group, target) => ({ protocol: 'amqp', queueName: groupQueueName(group.topic, group.group), mode: 'QueueLength', value: target }),
        // The AMQP URL carries the password: read from the Secret's `url` key.
        auth: { secretTargetRef: [secret('host', 'url')] },
      };
    }
    case 'nats': {
      const { streamName, durableName } = await import('../../adapters/nats/NatsAdapter.js');
      const servers = typeof settings.servers === 'string' ? settings.servers : Array.isArray(settings.servers) ? String(settings.servers[0]) : '127.0.0.1:4222';
      const host = servers.replace(/^[a-z]+:\/\//, '').replace(/^[^@]*@/, '').split(',')[0]!.replace(/:\d+$/, '');
      return {
        type: KedaScaler.nats,
        metadata: (group, target) => ({
          natsServerMonitoringEndpoint: `${host}:8222`,
          account: '$G',
          stream: streamName(group.topic),
          consumer: durableName(group.group),
          lagThreshold: target,
        }),
      };
    }
    case 'pulsar': {
      const where = { tenant: typeof settings.tenant === 'string' ? settings.tenant : 'public', namespace: typeof settings.namespace === 'string' ? settings.namespace : 'default' };
      const adminURL = (typeof settings.url === 'string' ? settings.url : 'http://127.0.0.1:8080').replace(/\/+$/, '');
      return {
        type: KedaScaler.pulsar,
        // Pulsar adapter: group = subscription on the persistent topic.
        metadata: (group, target) => ({ adminURL, topic: persistentTopic(where, group.topic), subscription: group.group, msgBacklogThreshold: target }),
      };
    }
    case 'sqs': {
      const region = typeof settings.region === 'string' ? settings.region : (process.env.AWS_REGION ?? 'us-east-1');
      const adapterFifo = settings.fifo === true;
      return {
        type: KedaScaler.sqs,
        // The simple queue name is accepted by the scaler; messages in flight count (scaleOnInFlight default).
        metadata: (group, target) => ({
          queueURL: sqsQueueName(group.topic, group.group, (group.createOptions as { fifo?: boolean } | undefined)?.fifo ?? adapterFifo),
          queueLength: target,
          awsRegion: region,
        }),
        auth: { podIdentity: { provider: 'aws' } },
      };
    }
    case 'servicebus':
      return {
        type: KedaScaler.servicebus,
        metadata: (group, target) => ({ topicName: topicEntity(group.topic), subscriptionName: subscriptionEntity(group.group), messageCount: target }),
        auth: { secretTargetRef: [secret('connection', 'connectionString')] },
      };
    case 'redis-streams': {
      const url = typeof settings.url === 'string' ? new URL(settings.url) : undefined;
      const address = url ? `${url.hostname}:${url.port || '6379'}` : '127.0.0.1:6379';
      const prefix = typeof settings.prefix === 'string' ? settings.prefix : '';
      return {
        type: KedaScaler['redis-streams'],
        // Redis Streams adapter: stream = prefix + topic, consumer group = the group.
        metadata: (group, target) => ({ address, stream: `${prefix}${group.topic}`, consumerGroup: group.group, pendingEntriesCount: target, ...(url?.protocol === 'rediss:' ? { enableTLS: 'true' } : {}) }),
        auth: { secretTargetRef: [secret('password', 'redisPassword')] },
      };
    }
    case 'bullmq': {
      const url = typeof settings.url === 'string' ? new URL(settings.url) : undefined;
      const address = url ? `${url.hostname}:${url.port || '6379'}` : '127.0.0.1:6379';
      const prefix = typeof settings.prefix === 'string' ? settings.prefix : 'bull';
      const { BullMQAdapter } = await import('../../adapters/bullmq/BullMQAdapter.js');
      return {
        type: KedaScaler.bullmq,
        // BullMQ adapter: one queue per group; its waiting jobs are the Redis list `<prefix>:<queue>:wait`.
        metadata: (group, target) => ({
          address,
          listName: `${prefix}:${BullMQAdapter.queueName(group.topic, group.group)}:wait`,
          listLength: target,
          ...(url?.protocol === 'rediss:' ? { enableTLS: 'true' } : {}),
        }),
        auth: { secretTargetRef: [secret('password', 'redisPassword')] },
      };
    }
    case 'artemis': {
      const { queueName } = await import('../../adapters/artemis/names.js');
      const host = typeof settings.host === 'string' ? settings.host : '127.0.0.1';
      return {
        type: KedaScaler.artemis,
        // Artemis adapter: topic = multicast address, group = durable multicast queue `<topic>.<group>`,
        // counted through the management console (Jolokia, port 8161). brokerName is the broker's
        // <name> in broker.xml (Artemis' default is 0.0.0.0): override it with the metadata option.
        metadata: (group, target) => ({
          managementEndpoint: `${host}:8161`,
          brokerName: '0.0.0.0',
          brokerAddress: group.topic,
          queueName: queueName(group.topic, group.group),
          queueLength: target,
          restApiTemplate: ARTEMIS_MULTICAST_TEMPLATE,
        }),
        auth: { secretTargetRef: [secret('username', 'username'), secret('password', 'password')] },
      };
    }
    default:
      throw new ConfigError(
        `No KEDA scaler for the '${adapter.name}' adapter (supported: ${Object.keys(KedaScaler).join(', ')}). ` +
          (adapter.name === 'memory' ? 'The memory adapter lives in one process and cannot scale out; pick a broker adapter in the topology.' : ''),
      );
  }
}

/** A DNS-1123 name: lowercase letters, digits and `-`, at most 63 characters. */
export function dns1123(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return cleaned.slice(0, 63).replace(/-$/, '') || 'omniqueue';
}

/** A label value: `[A-Za-z0-9._-]`, at most 63 characters (OmniQueue names already fit the characters). */
function label(value: string): string {
  return value.slice(0, 63).replace(/[^A-Za-z0-9]+$/, '');
}
