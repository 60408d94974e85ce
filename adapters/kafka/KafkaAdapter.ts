import kafkajs from 'kafkajs';
import type { Admin, ConsumerConfig, ITopicConfig, KafkaConfig, LogEntry, Message as ProducerMessage, Producer, ProducerConfig } from 'kafkajs';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, DeliveryListener, EnsureRequest, GroupPrune, TopologyChange, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, GroupInUseError, OmniQueueError, PayloadTooLargeError, PublishError } from '../../runtime/errors.js';
import { stderrLogger, type Logger } from '../../runtime/Logger.js';
import { KafkaConsumption, KafkaHeader } from './KafkaConsumption.js';
import { ProduceBatcher } from './ProduceBatcher.js';
import { retryTopicName } from './retryTopicName.js';
import { subscriptionAwareAssigner } from './subscriptionAwareAssigner.js';

const { Kafka, Partitioners, PartitionAssigners, logLevel: KafkaLogLevel } = kafkajs;

/** Consumer-group timing. Small values make joins and failovers fast; see the Kafka docs for limits. */
export interface KafkaConsumerTuning {
  /** A member that sends no heartbeat for this long is removed and its partitions reassigned. Default 10,000 ms. */
  readonly sessionTimeout?: number;
  /** How long the group waits for members to rejoin during a rebalance. Default 10,000 ms. */
  readonly rebalanceTimeout?: number;
  /** Heartbeat period. Default 500 ms. */
  readonly heartbeatInterval?: number;
  /** Longest a fetch waits on the broker for data. Default 100 ms. */
  readonly maxWaitTimeInMs?: number;
  /** Most bytes fetched per partition per request. Default 1 MiB. */
  readonly maxBytesPerPartition?: number;
}

/** Settings of the Kafka adapter. */
export interface KafkaAdapterOptions {
  /** Bootstrap brokers, `host:port`. Default `['127.0.0.1:9092']`. */
  readonly brokers?: readonly string[];
  /** Client id shown in broker logs and quotas. Default `omniqueue`. */
  readonly clientId?: string;
  /** TLS, SASL, timeouts … passed to `new Kafka(...)` as they are. */
  readonly kafka?: Omit<KafkaConfig, 'brokers' | 'clientId' | 'logCreator' | 'logLevel'>;
  /** Consumer-group timing. */
  readonly consumer?: KafkaConsumerTuning;
  /** Where kafkajs' own warnings and errors go. Default: JSON lines on stderr. */
  readonly logger?: Logger;
  /**
   * Largest payload accepted, in bytes; bigger ones reject with `PayloadTooLargeError` before they
   * are sent. Default 1,000,000 (the broker's `message.max.bytes` is 1,048,588 including headers).
   */
  readonly maxPayloadBytes?: number;
  /**
   * Partitions of topics this adapter creates when `createOptions.numPartitions` is not given.
   * Default: the broker's `num.partitions`. A group's consumers share work by partition, so a topic
   * needs at least as many partitions as the group has consumers.
   */
  readonly defaultPartitions?: number;
  /** How long `consume` waits for the consumer to join its group. Default 60,000 ms. */
  readonly joinTimeoutMs?: number;
}

/**
 * `createOptions` understood by {@link KafkaAdapter.ensure} (and `publish`/`subscribe` with
 * `ensure: true`). Unknown keys are rejected.
 */
export interface KafkaCreateOptions {
  /** Partitions of the topic. Default: the broker's `num.partitions`. */
  readonly numPartitions?: number;
  /** Replication factor. Default: the broker's `default.replication.factor`. */
  readonly replicationFactor?: number;
  /** Topic configs (`retention.ms`, `cleanup.policy` …), as a map or as kafkajs' name/value list. */
  readonly configEntries?: Readonly<Record<string, string>> | readonly { readonly name: string; readonly value: string }[];
  /** Partitions of the group's retry topic. Default: as many as the topic has. */
  readonly retryPartitions?: number;
}

/**
 * What the Kafka adapter does, declared honestly:
 * - `delay: 'emulated'` — Kafka has no per-message delay. `nack(delayMs)` re-publishes the message to
 *   the group's retry topic `<topic>.<group>.retry` with `omniqueue-attempt` + 1 and an
 *   `omniqueue-not-before` header, and only after Kafka acknowledged that copy commits the original.
 *   The same consumer reads the retry topic and pauses a retry partition until its head is due, so
 *   the main topic is never blocked; inside the retry topic a later-due head delays the retries
 *   behind it (delays are "no sooner than"). `publish(..., { delayMs })` writes the message to the
 *   topic with `omniqueue-not-before`; each group's consumer parks it in its retry topic when it is
 *   early.
 * - `attempts: 'header'` — Kafka has no delivery counter; the adapter carries `omniqueue-attempt`.
 * - `exactlyOnce: false` — offsets are committed after settlement (at least once): a consumer that
 *   dies before its commit, or a rebalance, redelivers messages that were already handled.
 *   `ack()` marks the offset settled and returns; the commit of the contiguous settled position
 *   follows asynchronously (coalesced, one commit request in flight per consumer), and a graceful
 *   close commits everything settled before leaving the group.
 * - A group that has no committed offset starts at the earliest retained message: it gets every
 *   message published after it was created, and the topic's retained history before that.
 */
export const KAFKA_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: true,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'emulated',
  attempts: 'header',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: 1_000_000,
});

const CREATE_OPTION_KEYS: ReadonlySet<string> = new Set(['numPartitions', 'replicationFactor', 'configEntries', 'retryPartitions']);
/** Most bytes coalesced into one produce request (below the broker's 1 MiB batch limit). */
const MAX_REQUEST_BYTES = 900_000;

function toKafkaError(error: unknown, what: string): OmniQueueError {
  if (error instanceof OmniQueueError) return error;
  const err = error as { name?: string; type?: string; message?: string };
  if (err.type === 'MESSAGE_TOO_LARGE' || err.type === 'RECORD_LIST_TOO_LARGE') {
    return new PublishError(`${what}: Kafka refused the message as too large (${err.message}).`, { cause: error, retryable: false });
  }
  if (err.name === 'KafkaJSConnectionError' || err.name === 'KafkaJSBrokerNotFound' || err.name === 'KafkaJSNumberOfRetriesExceeded' || err.name === 'KafkaJSConnectionClosedError') {
    return new ConnectionError(`${what}: ${err.message}`, { cause: error });
  }
  return new PublishError(`${what}: ${err.message ?? String(error)}`, { cause: error });
}

/**
 * The Kafka adapter (kafkajs). Topic = Kafka topic; group = consumer group; key = record key;
 * headers = record headers; payload = record value, unchanged.
 *
 * Publishing uses one idempotent producer (acks=all, one request in flight, concurrent publishes
 * coalesced into the next request); `send` resolves when the broker acknowledged the record.
 * Consuming commits, per partition, only the contiguous run of settled offsets, so prefetch > 1
 * never commits past an open or nacked message. See {@link KAFKA_FEATURES} for how delays and
 * attempts are emulated.
 */
export class KafkaAdapter implements Adapter {
  readonly name = 'kafka';
  readonly features: AdapterFeatures;
  readonly #kafka: InstanceType<typeof Kafka>;
  readonly #logger: Logger;
  readonly #options: KafkaAdapterOptions;
  readonly #consumptions = new Set<KafkaConsumption>();
  readonly #createdTopics = new Set<string>();
  #producer: Producer | undefined;
  #admin: Admin | undefined;
  #batcher: ProduceBatcher | undefined;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: KafkaAdapterOptions = {}) {
    this.#options = options;
    this.#logger = options.logger ?? stderrLogger;
    const maxPayloadBytes = options.maxPayloadBytes ?? KAFKA_FEATURES.maxPayloadBytes!;
    this.features = maxPayloadBytes === KAFKA_FEATURES.maxPayloadBytes ? KAFKA_FEATURES : Object.freeze({ ...KAFKA_FEATURES, maxPayloadBytes });
    const logger = this.#logger;
    this.#kafka = new Kafka({
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8 },
      connectionTimeout: 3_000,
      ...options.kafka,
      brokers: [...(options.brokers ?? ['127.0.0.1:9092'])],
      clientId: options.clientId ?? 'omniqueue',
      logLevel: KafkaLogLevel.WARN,
      logCreator:
        () =>
        ({ level, log }: LogEntry) => {
          const { message, ...fields } = log;
          const entry = { source: 'kafkajs', ...fields };
          // kafkajs warns that a bounded retry count weakens the idempotent producer's exactly-once
          // promise; OmniQueue promises at least once and bounds retries so publishes cannot hang.
          if ((level === KafkaLogLevel.ERROR || level === KafkaLogLevel.WARN) && !message.startsWith('Limiting retries')) logger.warn(entry, message);
          else logger.debug(entry, message);
        },
    });
  }

  async connect(): Promise<void> {
    if (this.#closing) throw new ClosedError('The Kafka adapter');
    this.#connecting ??= (async () => {
      const producerConfig: ProducerConfig = {
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // About a minute of retries (100 ms doubling to 2 s) rides out a broker restart; after that
        // the publish rejects with a ConnectionError instead of hanging.
        retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 30 },
      };
      const producer = this.#kafka.producer(producerConfig);
      const admin = this.#kafka.admin();
      try {
        await Promise.all([producer.connect(), admin.connect()]);
      } catch (error) {
        await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
        this.#connecting = undefined;
        throw new ConnectionError(`Could not connect to Kafka at ${(this.#options.brokers ?? ['127.0.0.1:9092']).join(',')}: ${(error as Error).message}`, { cause: error });
      }
      this.#producer = producer;
      this.#admin = admin;
      this.#batcher = new ProduceBatcher(producer, MAX_REQUEST_BYTES);
    })();
    return this.#connecting;
  }

  #ready(): { admin: Admin; batcher: ProduceBatcher } {
    if (this.#closing) throw new ClosedError('The Kafka adapter');
    if (!this.#admin || !this.#batcher) throw new ConnectionError('The Kafka adapter is not connected: call connect() (Broker.init()) first.');
    return { admin: this.#admin, batcher: this.#batcher };
  }

  async ensure(request: EnsureRequest): Promise<void> {
    const { admin } = this.#ready();
    const options = parseCreateOptions(request.createOptions);
    await this.#createTopic(admin, request.topic, options.numPartitions ?? this.#options.defaultPartitions, options.replicationFactor, options.configEntries);
    // A Kafka group exists once its consumers commit; a group whose consumers find no committed
    // offset starts at the earliest retained message, so it gets every message published after
    // this call (and the topic's retained history before it). Nothing to create for the group here.
  }

  /**
   * What {@link KafkaAdapter.ensure} would change: a missing topic is created; an existing topic with
   * fewer partitions than asked for gets more (Kafka cannot take partitions away). Groups have
   * nothing to create: they exist once their consumers commit.
   */
  async plan(request: EnsureRequest): Promise<TopologyChange[]> {
    const { admin } = this.#ready();
    const wanted = parseCreateOptions(request.createOptions).numPartitions ?? this.#options.defaultPartitions;
    const resource = `topic ${request.topic}`;
    if (!(await admin.listTopics()).includes(request.topic)) {
      return [{ action: 'create', resource, ...(wanted === undefined ? {} : { detail: `${wanted} partitions` }) }];
    }
    const have = await this.#partitionCount(admin, request.topic);
    if (wanted !== undefined && wanted > have) return [{ action: 'update', resource, detail: `partitions ${have} → ${wanted}` }];
    return [{ action: 'unchanged', resource: `${resource} (${have} partitions)` }];
  }

  /**
   * The consumer groups with committed offsets on `topic` that are not in `keepGroups`, each with its
   * retry topic (see {@link retryTopicName}) when that exists. A group with members is blocked, and
   * so is one that also has offsets on other topics: deleting it would drop those too.
   */
  async planPrune(topic: string, keepGroups: readonly string[]): Promise<GroupPrune[]> {
    const { admin } = this.#ready();
    const topics = new Set(await admin.listTopics());
    if (!topics.has(topic)) return [];
    const { groups } = await admin.listGroups();
    const candidates = groups.map((group) => group.groupId).filter((group) => !keepGroups.includes(group));
    const prunes: GroupPrune[] = [];
    for (let i = 0; i < candidates.length; i += 32) {
      const found = await Promise.all(candidates.slice(i, i + 32).map((group) => this.#prunable(admin, topics, topic, group)));
      for (const prune of found) if (prune) prunes.push(prune);
    }
    return prunes;
  }

  async #prunable(admin: Admin, topics: ReadonlySet<string>, topic: string, group: string): Promise<GroupPrune | undefined> {
    const offsets = await admin.fetchOffsets({ groupId: group });
    const committed = offsets.filter((entry) => entry.partitions.some((partition) => partition.offset !== '-1')).map((entry) => entry.topic);
    if (!committed.includes(topic)) return undefined;
    const retryTopic = retryTopicName(topic, group);
    const changes: TopologyChange[] = [{ action: 'delete', resource: `consumer group ${group} (offsets on ${topic})` }];
    if (topics.has(retryTopic)) changes.push({ action: 'delete', resource: `topic ${retryTopic} (retry topic of group ${group})` });
    const others = committed.filter((name) => name !== topic && name !== retryTopic);
    const [description] = (await admin.describeGroups([group])).groups;
    const members = description?.members.length ?? 0;
    const blockedBy =
      members > 0
        ? `${members} consumer(s) connected (group state ${description!.state})`
        : others.length > 0
          ? `it also has offsets on ${others.join(', ')}, which deleting the group would drop`
          : undefined;
    return { topic, group, changes, ...(blockedBy === undefined ? {} : { blockedBy }) };
  }

  /**
   * Deletes consumer group `target.group`, then its retry topic when `target` lists it. Rejects with
   * `GroupInUseError` when the group has members (Kafka refuses NON_EMPTY_GROUP); the retry topic
   * then stays too.
   */
  async prune(target: GroupPrune): Promise<void> {
    const { admin } = this.#ready();
    try {
      await admin.deleteGroups([target.group]);
    } catch (error) {
      const types = groupErrorTypes(error);
      if (types.includes('NON_EMPTY_GROUP')) throw new GroupInUseError(`Kafka consumer group '${target.group}' still has members: stop its consumers first.`, { cause: error });
      if (!types.includes('GROUP_ID_NOT_FOUND')) throw new ConfigError(`Kafka could not delete consumer group '${target.group}': ${(error as Error).message}`, { cause: error });
    }
    const retryTopic = retryTopicName(target.topic, target.group);
    if (!target.changes.some((change) => change.resource.startsWith(`topic ${retryTopic} `))) return;
    if ((await admin.listTopics()).includes(retryTopic)) {
      try {
        await admin.deleteTopics({ topics: [retryTopic] });
      } catch (error) {
        if ((error as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw new ConfigError(`Kafka could not delete retry topic '${retryTopic}': ${(error as Error).message}`, { cause: error });
      }
    }
    this.#createdTopics.delete(retryTopic);
  }

  async #partitionCount(admin: Admin, topic: string): Promise<number> {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics[0]?.partitions.length ?? 0;
  }

  async #createTopic(admin: Admin, topic: string, numPartitions: number | undefined, replicationFactor: number | undefined, configEntries: ITopicConfig['configEntries']): Promise<void> {
    if (this.#createdTopics.has(topic)) return;
    const spec: ITopicConfig = { topic };
    if (numPartitions !== undefined) spec.numPartitions = numPartitions;
    if (replicationFactor !== undefined) spec.replicationFactor = replicationFactor;
    if (configEntries !== undefined) spec.configEntries = configEntries;
    let existed = false;
    for (let attempt = 1; ; attempt++) {
      try {
        existed = !(await admin.createTopics({ topics: [spec], waitForLeaders: true }));
        break;
      } catch (error) {
        // kafkajs answers `false` for a topic that exists; a race with another creator may still throw.
        const err = error as { type?: string; retriable?: boolean; errors?: { type?: string }[] };
        const exists = err.type === 'TOPIC_ALREADY_EXISTS' || (err.errors !== undefined && err.errors.length > 0 && err.errors.every((item) => item.type === 'TOPIC_ALREADY_EXISTS'));
        if (exists) {
          existed = true;
          break;
        }
        // A new topic's leaders can take longer to show in the metadata than kafkajs waits on a busy
        // broker (UNKNOWN_TOPIC_OR_PARTITION): ask again, the create itself is idempotent.
        if (err.retriable === true && attempt < 5) {
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
          continue;
        }
        throw new ConfigError(`Kafka could not create topic '${topic}': ${(error as Error).message}`, { cause: error });
      }
    }
    if (existed && numPartitions !== undefined && numPartitions > (await this.#partitionCount(admin, topic))) {
      await admin.createPartitions({ topicPartitions: [{ topic, count: numPartitions }] });
    }
    this.#createdTopics.add(topic);
  }

  async send(message: WireMessage): Promise<void> {
    const { batcher } = this.#ready();
    const payload = message.payload;
    const limit = this.features.maxPayloadBytes!;
    if (payload.byteLength > limit) throw new PayloadTooLargeError(payload.byteLength, limit, 'Kafka');
    let headers: Record<string, string> = message.headers as Record<string, string>;
    let bytes = payload.byteLength + (message.key?.length ?? 0) + 64;
    for (const name in headers) bytes += name.length + headers[name]!.length + 8;
    if (message.delayMs > 0) headers = { ...headers, [KafkaHeader.NotBefore]: String(message.publishedAt + message.delayMs) };
    const record: ProducerMessage = {
      key: message.key ?? null,
      value: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      headers,
      timestamp: String(message.publishedAt),
    };
    try {
      await batcher.send(message.topic, record, bytes);
    } catch (error) {
      throw toKafkaError(error, `Kafka did not acknowledge the message to '${message.topic}'`);
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    const { admin, batcher } = this.#ready();
    const options = parseCreateOptions(request.createOptions);
    const retryTopic = retryTopicName(request.topic, request.group);
    let partitions = options.retryPartitions;
    if (partitions === undefined) {
      try {
        const metadata = await admin.fetchTopicMetadata({ topics: [request.topic] });
        partitions = metadata.topics[0]?.partitions.length || undefined;
      } catch (error) {
        throw new ConfigError(`Kafka topic '${request.topic}' does not exist (subscribe with { ensure: true } to create it): ${(error as Error).message}`, { cause: error });
      }
    }
    await this.#createTopic(admin, retryTopic, partitions, options.replicationFactor, undefined);
    const tuning = this.#options.consumer ?? {};
    const consumerConfig: Omit<ConsumerConfig, 'groupId'> = {
      sessionTimeout: tuning.sessionTimeout ?? 10_000,
      rebalanceTimeout: tuning.rebalanceTimeout ?? 10_000,
      heartbeatInterval: tuning.heartbeatInterval ?? 500,
      maxWaitTimeInMs: tuning.maxWaitTimeInMs ?? 100,
      maxBytesPerPartition: tuning.maxBytesPerPartition ?? 1_048_576,
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 10 },
      partitionAssigners: [subscriptionAwareAssigner, PartitionAssigners.roundRobin],
    };
    const consumption = new KafkaConsumption(
      {
        createConsumer: (config) => this.#kafka.consumer(config),
        republish: (topic, message) => {
          const size = (message.value as Buffer | null)?.byteLength ?? 0;
          return batcher.send(topic, message, size + 256).catch((error: unknown) => {
            throw toKafkaError(error, `Kafka did not acknowledge the retry copy to '${topic}'`);
          });
        },
        logger: this.#logger,
        joinTimeoutMs: this.#options.joinTimeoutMs ?? 60_000,
      },
      { topic: request.topic, retryTopic, group: request.group, prefetch: request.prefetch, consumer: consumerConfig },
      onDelivery,
    );
    this.#consumptions.add(consumption);
    try {
      await consumption.start();
    } catch (error) {
      this.#consumptions.delete(consumption);
      throw error;
    }
    return {
      stop: () => consumption.stop(),
      close: async () => {
        await consumption.close();
        this.#consumptions.delete(consumption);
      },
    };
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#connecting?.catch(() => undefined);
      await Promise.allSettled([...this.#consumptions].map((consumption) => consumption.close()));
      this.#consumptions.clear();
      await this.#batcher?.drain();
      await Promise.allSettled([this.#producer?.disconnect(), this.#admin?.disconnect()]);
    })();
    return this.#closing;
  }
}

/** The per-group error types of a failed `deleteGroups` (kafkajs' `KafkaJSDeleteGroupsError.groups`). */
function groupErrorTypes(error: unknown): string[] {
  const groups = (error as { groups?: { error?: { type?: string } }[] } | undefined)?.groups ?? [];
  return groups.map((group) => group.error?.type ?? '');
}

interface ParsedCreateOptions {
  readonly numPartitions: number | undefined;
  readonly replicationFactor: number | undefined;
  readonly configEntries: { name: string; value: string }[] | undefined;
  readonly retryPartitions: number | undefined;
}

function positiveInteger(value: unknown, name: string, allowMinusOne: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || (value < 1 && !(allowMinusOne && value === -1))) {
    throw new ConfigError(`Kafka createOptions.${name} must be a positive integer, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function parseCreateOptions(options: Readonly<Record<string, unknown>> | undefined): ParsedCreateOptions {
  if (!options) return { numPartitions: undefined, replicationFactor: undefined, configEntries: undefined, retryPartitions: undefined };
  for (const key of Object.keys(options)) {
    if (!CREATE_OPTION_KEYS.has(key)) throw new ConfigError(`Unknown Kafka createOptions key '${key}' (known: ${[...CREATE_OPTION_KEYS].join(', ')}).`);
  }
  let configEntries: { name: string; value: string }[] | undefined;
  const entries = options['configEntries'];
  if (Array.isArray(entries)) {
    configEntries = entries.map((entry: { name?: unknown; value?: unknown }) => {
      if (typeof entry?.name !== 'string' || typeof entry.value !== 'string') throw new ConfigError('Kafka createOptions.configEntries items must be { name: string, value: string }.');
      return { name: entry.name, value: entry.value };
    });
  } else if (entries !== undefined) {
    if (entries === null || typeof entries !== 'object') throw new ConfigError('Kafka createOptions.configEntries must be a map of strings or a list of { name, value }.');
    configEntries = Object.entries(entries as Record<string, unknown>).map(([name, value]) => ({ name, value: String(value) }));
  }
  return {
    numPartitions: positiveInteger(options['numPartitions'], 'numPartitions', true),
    replicationFactor: positiveInteger(options['replicationFactor'], 'replicationFactor', true),
    configEntries,
    retryPartitions: positiveInteger(options['retryPartitions'], 'retryPartitions', false),
  };
}
