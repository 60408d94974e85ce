import { createHash } from 'node:crypto';
import { connect, headers as natsHeaders, nanos, NoRespondersError, TimeoutError as NatsTimeoutError, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, Delivery, DeliveryListener, EnsureRequest, GroupPrune, TopologyChange, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, GroupInUseError, OmniQueueError, PayloadTooLargeError, PublishError, UnsupportedFeatureError } from '../../runtime/errors.js';
import { stderrLogger, type Logger } from '../../runtime/Logger.js';

/** Settings of the NATS JetStream adapter. */
export interface NatsAdapterOptions {
  /** Server(s). Default: `NATS_URL`, else `127.0.0.1:4222`. */
  readonly servers?: string | readonly string[];
  /** Connection name shown by the server. Default `omniqueue`. */
  readonly name?: string;
  /**
   * How long a publish keeps trying (PubAck timeouts, no stream reachable during a server restart)
   * before it rejects with a `ConnectionError`. Retrying is safe: every publish carries
   * `Nats-Msg-Id`, so the server drops the duplicates. Default 30 s.
   */
  readonly publishTimeoutMs?: number;
  /** Wait for one PubAck. Default 5 s. */
  readonly pubAckTimeoutMs?: number;
  /** Reconnect wait between attempts (nats.js reconnects forever). Default 250 ms. */
  readonly reconnectTimeWaitMs?: number;
  /**
   * Confirm every ack with the server (AckAck, one round trip each) so `ack()` resolves only once
   * the server took it. Default true; `false` sends plain acks (faster, unconfirmed).
   */
  readonly confirmAcks?: boolean;
  /** Where connection events are logged. Default: warnings and errors to stderr. */
  readonly logger?: Logger;
}

/** Per-topic / per-group creation options (`createOptions` of `ensure` and `subscribe`). */
export interface NatsCreateOptions {
  /** Stream settings merged over the defaults (file storage, limits retention, 1 replica). */
  readonly stream?: Partial<StreamConfig>;
  /** Consumer settings merged over the derived ones (ack wait, max deliver, deliver policy). */
  readonly consumer?: Partial<ConsumerConfig>;
  /**
   * How long the server waits for a settlement before redelivering. Default 5 s; deliveries still
   * being handled are kept leased with progress acks, so handlers may take longer.
   */
  readonly ackWaitMs?: number;
}

/**
 * What the JetStream adapter does:
 * - a topic is a stream over the subject `<topic>` (stream name from {@link streamName}); a group
 *   is a durable pull consumer shared by the group's workers, delivering what is published after
 *   it was created;
 * - ack / nak(delay) / term are native; `attempt` is the server's delivery count;
 * - `Nats-Msg-Id` is the message id, so the server drops a re-sent publish within its duplicate
 *   window (2 min by default);
 * - `MaxDeliver` is derived from the retry policy (well above `maxAttempts`, so the runtime, not
 *   the server, decides when a message is dead-lettered through the dead-letter topic);
 * - delayed publish is not supported (JetStream before 2.12 has no scheduled messages): a publish
 *   with `delayMs` rejects with `UnsupportedFeatureError`; `nack(delay)` is native.
 */
export const NATS_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: true,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'native',
  delayedPublish: false,
  attempts: 'broker',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: 1024 * 1024,
});

/** Header carrying the key (JetStream has no native message key). */
export const KEY_HEADER = 'omniqueue-key';
const MSG_ID_HEADER = 'Nats-Msg-Id';
/**
 * Default AckWait. Short on purpose: a message the server handed to a consumer that then vanished
 * (a killed process, or the one in flight when a pull subscription closes) comes back after this
 * long. Deliveries that take longer stay leased: the adapter sends `+WPI` (working) for them.
 */
const DEFAULT_ACK_WAIT_MS = 5_000;

/**
 * The stream of a topic. Stream names may not contain `.`, `*`, `>`, spaces or path separators:
 * a topic without dots keeps its name; a topic with dots gets them replaced by `_` plus a short
 * hash of the topic, so `a.b` and `a_b` never share a stream.
 */
export function streamName(topic: string): string {
  if (!topic.includes('.')) return topic;
  return `${topic.replace(/\./g, '_')}_${shortHash(topic)}`;
}

/** The durable consumer of a group (same mapping as {@link streamName}). */
export function durableName(group: string): string {
  return streamName(group);
}

/** MaxDeliver for a retry policy: room for the runtime's attempts plus crash redeliveries. */
export function maxDeliverFor(maxAttempts: number): number {
  return Math.max(maxAttempts * 2, maxAttempts + 10);
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 8);
}

/**
 * NATS JetStream adapter on `@nats-io/transport-node` + `@nats-io/jetstream` v3. Reconnects are
 * nats.js's own (forever, every `reconnectTimeWaitMs`); consumers keep pulling after a reconnect.
 * Translation only: retries, dead letters and concurrency stay in the runtime.
 */
export class NatsAdapter implements Adapter {
  readonly name = 'nats';
  readonly features: AdapterFeatures = NATS_FEATURES;
  readonly #servers: string | string[];
  readonly #connectionName: string;
  readonly #publishTimeoutMs: number;
  readonly #pubAckTimeoutMs: number;
  readonly #reconnectTimeWaitMs: number;
  readonly #confirmAcks: boolean;
  readonly #logger: Logger;
  readonly #consumers = new Set<NatsConsumption>();
  readonly #streams = new Map<string, Promise<void>>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #maxPayload = NATS_FEATURES.maxPayloadBytes!;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: NatsAdapterOptions = {}) {
    const servers = options.servers ?? process.env.NATS_URL ?? '127.0.0.1:4222';
    this.#servers = typeof servers === 'string' ? servers : [...servers];
    this.#connectionName = options.name ?? 'omniqueue';
    this.#publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
    this.#pubAckTimeoutMs = options.pubAckTimeoutMs ?? 5_000;
    this.#reconnectTimeWaitMs = options.reconnectTimeWaitMs ?? 250;
    this.#confirmAcks = options.confirmAcks ?? true;
    this.#logger = options.logger ?? stderrLogger;
  }

  /** The connection (for tests and escape hatches). Undefined before `connect`. */
  get connection(): NatsConnection | undefined {
    return this.#nc;
  }

  async connect(): Promise<void> {
    if (this.#closing) throw new ClosedError('The nats adapter');
    if (this.#nc) return;
    try {
      const nc = await connect({
        servers: this.#servers,
        name: this.#connectionName,
        maxReconnectAttempts: -1,
        reconnectTimeWait: this.#reconnectTimeWaitMs,
        waitOnFirstConnect: false,
      });
      this.#nc = nc;
      this.#js = jetstream(nc, { timeout: this.#pubAckTimeoutMs });
      this.#jsm = await jetstreamManager(nc, { timeout: this.#pubAckTimeoutMs });
      this.#maxPayload = nc.info?.max_payload ?? this.#maxPayload;
      void this.#watch(nc);
    } catch (error) {
      if (this.#nc) await this.#nc.close().catch(() => undefined);
      this.#nc = undefined;
      throw new ConnectionError(`Cannot connect to NATS JetStream: ${(error as Error).message}`, { cause: error });
    }
  }

  async ensure(request: EnsureRequest): Promise<void> {
    const jsm = this.#manager();
    const options = parseCreateOptions(request.createOptions);
    await this.#ensureStream(request.topic, options);
    if (request.group === undefined) return;
    const stream = streamName(request.topic);
    const durable = durableName(request.group);
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
      max_deliver: maxDeliverFor(request.retry?.maxAttempts ?? 5),
      filter_subject: request.topic,
      ...options.consumer,
    };
    try {
      const info = await jsm.consumers.info(stream, durable).catch((error: unknown) => {
        if (isApiError(error, JetStreamApiCodes.ConsumerNotFound)) return undefined;
        throw error;
      });
      if (!info) {
        await jsm.consumers.add(stream, config);
      } else if (info.config.max_deliver !== config.max_deliver || info.config.ack_wait !== config.ack_wait) {
        await jsm.consumers.update(stream, durable, { max_deliver: config.max_deliver, ack_wait: config.ack_wait });
      }
    } catch (error) {
      throw translate(error, `Cannot create the consumer '${durable}' on stream '${stream}'`);
    }
  }

  /** What {@link NatsAdapter.ensure} would change: the stream, and the durable consumer's max deliver and ack wait. */
  async plan(request: EnsureRequest): Promise<TopologyChange[]> {
    const jsm = this.#manager();
    const options = parseCreateOptions(request.createOptions);
    const stream = streamName(request.topic);
    const streamInfo = await jsm.streams.info(stream).catch((error: unknown) => {
      if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return undefined;
      throw translate(error, `Cannot read the stream '${stream}'`);
    });
    const changes: TopologyChange[] = [{ action: streamInfo ? 'unchanged' : 'create', resource: `stream ${stream} (subject ${request.topic})` }];
    if (request.group === undefined) return changes;
    const durable = durableName(request.group);
    const resource = `durable consumer ${stream}/${durable}`;
    const info = streamInfo
      ? await jsm.consumers.info(stream, durable).catch((error: unknown) => {
          if (isApiError(error, JetStreamApiCodes.ConsumerNotFound)) return undefined;
          throw translate(error, `Cannot read the consumer '${durable}'`);
        })
      : undefined;
    const maxDeliver = maxDeliverFor(request.retry?.maxAttempts ?? 5);
    const ackWait = nanos(options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
    if (!info) changes.push({ action: 'create', resource, detail: `max deliver ${maxDeliver}, ack wait ${options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS} ms` });
    else if (info.config.max_deliver !== maxDeliver || info.config.ack_wait !== ackWait) {
      changes.push({ action: 'update', resource, detail: `max deliver ${info.config.max_deliver} → ${maxDeliver}, ack wait ${Number(info.config.ack_wait) / 1e6} → ${Number(ackWait) / 1e6} ms` });
    } else changes.push({ action: 'unchanged', resource });
    return changes;
  }

  /**
   * The durable consumers on the topic's stream that no group of `keepGroups` maps to (see
   * {@link durableName}). Ephemeral consumers are left alone. A consumer with pull requests waiting
   * (a worker is attached; a stopped worker's pulls expire within 30 s) is blocked.
   */
  async planPrune(topic: string, keepGroups: readonly string[]): Promise<GroupPrune[]> {
    const jsm = this.#manager();
    const stream = streamName(topic);
    const keep = new Set(keepGroups.map(durableName));
    const prunes: GroupPrune[] = [];
    try {
      for await (const info of jsm.consumers.list(stream)) {
        const durable = info.config.durable_name;
        if (durable === undefined || keep.has(durable)) continue;
        const pending = info.num_pending + info.num_ack_pending;
        prunes.push({
          topic,
          group: durable,
          changes: [{ action: 'delete', resource: `durable consumer ${stream}/${durable}`, ...(pending > 0 ? { detail: `${pending} messages not yet acknowledged` } : {}) }],
          ...(info.num_waiting > 0 || info.push_bound === true ? { blockedBy: `a consumer is attached (${info.num_waiting} pull requests waiting)` } : {}),
        });
      }
    } catch (error) {
      if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return [];
      throw translate(error, `Cannot list the consumers of stream '${stream}'`);
    }
    return prunes;
  }

  /** Deletes the durable consumer `target.group` of the topic's stream; rejects with `GroupInUseError` while a consumer is attached. */
  async prune(target: GroupPrune): Promise<void> {
    const jsm = this.#manager();
    const stream = streamName(target.topic);
    try {
      const info = await jsm.consumers.info(stream, target.group);
      if (info.num_waiting > 0 || info.push_bound === true) {
        throw new GroupInUseError(`Durable consumer '${target.group}' of stream '${stream}' has a consumer attached (${info.num_waiting} pull requests waiting).`);
      }
      await jsm.consumers.delete(stream, target.group);
    } catch (error) {
      if (isApiError(error, JetStreamApiCodes.ConsumerNotFound) || isApiError(error, JetStreamApiCodes.StreamNotFound)) return;
      throw translate(error, `Cannot delete the consumer '${target.group}' of stream '${stream}'`);
    }
  }

  async send(message: WireMessage): Promise<void> {
    if (this.#closing) throw new ClosedError('The nats adapter');
    const js = this.#client();
    if (message.delayMs > 0) throw new UnsupportedFeatureError('nats', 'delayed publish (JetStream has no scheduled messages before 2.12)');
    const payload = message.payload;
    if (payload.byteLength > this.#maxPayload) throw new PayloadTooLargeError(payload.byteLength, this.#maxPayload, 'NATS');
    const h = natsHeaders();
    for (const name of Object.keys(message.headers)) h.set(name, message.headers[name]!);
    if (message.key !== undefined) h.set(KEY_HEADER, message.key);
    const task = this.#publish(js, message.topic, payload, message.id, h);
    this.#inFlight.add(task);
    try {
      await task;
    } finally {
      this.#inFlight.delete(task);
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closing) throw new ClosedError('The nats adapter');
    const js = this.#client();
    if (request.ensure) await this.ensure(request);
    const consumption = new NatsConsumption(this, js, request, onDelivery, this.#confirmAcks, this.#logger);
    try {
      await consumption.start();
    } catch (error) {
      throw translate(error, `Cannot consume group '${request.group}' of topic '${request.topic}'`);
    }
    this.#consumers.add(consumption);
    return consumption;
  }

  async close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
      await Promise.allSettled([...this.#inFlight]);
      const nc = this.#nc;
      this.#nc = undefined;
      if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    })();
    return this.#closed;
  }

  /** Deletes the streams of these topics (their consumers go with them). For tests and tear-down. */
  async deleteTopics(topics: readonly string[]): Promise<void> {
    const jsm = this.#manager();
    for (const topic of topics) {
      await jsm.streams.delete(streamName(topic)).catch((error: unknown) => {
        if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
      });
      this.#streams.delete(topic);
    }
  }

  /** Forgets a closed consumer. @internal */
  forget(consumer: NatsConsumption): void {
    this.#consumers.delete(consumer);
  }

  async #publish(js: JetStreamClient, subject: string, payload: Uint8Array, id: string, h: ReturnType<typeof natsHeaders>): Promise<void> {
    const deadline = Date.now() + this.#publishTimeoutMs;
    let createdStream = false;
    for (;;) {
      try {
        await js.publish(subject, payload, { msgID: id, headers: h, timeout: this.#pubAckTimeoutMs });
        return;
      } catch (error) {
        if (this.#closing && (!this.#nc || this.#nc.isClosed())) throw new ClosedError('The nats adapter', { cause: error });
        const noStream = error instanceof NoRespondersError || isApiError(error, JetStreamApiCodes.StreamNotFound) || /no responders/i.test(String(error));
        if (noStream && !createdStream && this.#nc && !this.#nc.isClosed() && !isReconnecting(this.#nc)) {
          // Nobody listens on the subject: the topic's stream does not exist yet. Create it once
          // (as RabbitMQ declares the exchange) and try again.
          createdStream = true;
          try {
            await this.#ensureStream(subject, {});
          } catch (ensureError) {
            throw translate(ensureError, `No stream for topic '${subject}' and creating it failed`);
          }
          continue;
        }
        const transient = noStream || error instanceof NatsTimeoutError || isTransient(error);
        if (!transient) {
          if (error instanceof OmniQueueError) throw error;
          throw new PublishError(`JetStream refused the publish to '${subject}': ${(error as Error)?.message ?? String(error)}`, { cause: error });
        }
        if (Date.now() + 100 >= deadline) {
          throw new ConnectionError(`JetStream did not acknowledge the publish to '${subject}' within ${this.#publishTimeoutMs} ms.`, { cause: error });
        }
        await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
      }
    }
  }

  #ensureStream(topic: string, options: NatsCreateOptions): Promise<void> {
    let pending = this.#streams.get(topic);
    if (!pending) {
      pending = this.#createStream(topic, options).catch((error: unknown) => {
        this.#streams.delete(topic);
        throw translate(error, `Cannot create the stream of topic '${topic}'`);
      });
      this.#streams.set(topic, pending);
    }
    return pending;
  }

  async #createStream(topic: string, options: NatsCreateOptions): Promise<void> {
    const jsm = this.#manager();
    const name = streamName(topic);
    try {
      await jsm.streams.info(name);
      return;
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
    }
    await jsm.streams.add({
      name,
      subjects: [topic],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: 1,
      ...options.stream,
    });
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') this.#logger.warn({ adapter: 'nats', server: status.server }, 'disconnected; reconnecting');
      else if (status.type === 'reconnect') this.#logger.info({ adapter: 'nats', server: status.server }, 'reconnected');
      else if (status.type === 'error') this.#logger.warn({ adapter: 'nats', err: String(status.error) }, 'connection error');
    }
  }

  #client(): JetStreamClient {
    if (this.#closing) throw new ClosedError('The nats adapter');
    if (!this.#js) throw new ConnectionError('NATS is not connected: call connect() first.');
    return this.#js;
  }

  #manager(): JetStreamManager {
    if (this.#closing) throw new ClosedError('The nats adapter');
    if (!this.#jsm) throw new ConnectionError('NATS is not connected: call connect() first.');
    return this.#jsm;
  }
}

/**
 * One worker of a group: a `consume()` on the durable pull consumer, pulling at most `prefetch`
 * messages and handing the runtime no more than `prefetch` unsettled deliveries at once.
 */
class NatsConsumption implements Consumption {
  readonly #unsettled = new Set<NatsDelivery>();
  #acks: { readonly message: JsMsg; readonly resolve: () => void; readonly reject: (error: unknown) => void }[] = [];
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #credit: (() => void) | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #stopped = false;
  #closed = false;

  constructor(
    private readonly adapter: NatsAdapter,
    private readonly js: JetStreamClient,
    private readonly request: ConsumeRequest,
    private readonly listener: DeliveryListener,
    readonly confirmAcks: boolean,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(streamName(this.request.topic), durableName(this.request.group));
    const info = await consumer.info(true);
    const ackWaitMs = Math.max(100, Number(info.config.ack_wait ?? nanos(DEFAULT_ACK_WAIT_MS)) / 1_000_000);
    const prefetch = this.request.prefetch;
    this.#messages = await consumer.consume({ max_messages: prefetch, threshold_messages: Math.max(1, Math.floor(prefetch / 4)) });
    this.#loop = this.#run(this.#messages);
    // Keep deliveries that are still being handled leased: progress ack at half the AckWait.
    const every = ackWaitMs / 2;
    this.#keepAlive = setInterval(() => {
      const now = performance.now();
      for (const delivery of this.#unsettled) if (now - delivery.handedAt >= every) delivery.raw.working();
    }, every);
    this.#keepAlive.unref();
  }

  async #run(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const message of messages) {
        if (this.#stopped) {
          // Pulled before stop() but never handed out: give it straight back.
          message.nak();
          continue;
        }
        const delivery = new NatsDelivery(this, message);
        this.#unsettled.add(delivery);
        this.listener(delivery);
        // Hold the iterator (and with it the next pull) until a slot is free.
        while (this.#unsettled.size >= this.request.prefetch && !this.#stopped) {
          await new Promise<void>((resolve) => (this.#credit = resolve));
        }
      }
    } catch (error) {
      if (!this.#stopped) this.logger.error({ adapter: 'nats', topic: this.request.topic, group: this.request.group, err: String(error) }, 'consumer stopped');
    }
  }

  /**
   * Acks a message. The acks of one tick are written together (nats.js flushes its outbound buffer
   * once per microtask turn, so acks issued from separate turns would each cost a socket write);
   * with `confirmAcks` the promise resolves on the server's confirmation of this ack. @internal
   */
  ack(message: JsMsg): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#acks.push({ message, resolve, reject });
      if (this.#acks.length === 1) process.nextTick(this.#flushAcks);
    });
  }

  readonly #flushAcks = (): void => {
    const batch = this.#acks;
    this.#acks = [];
    for (const { message, resolve, reject } of batch) {
      if (this.confirmAcks) {
        message.ackAck().then(() => resolve(), reject);
        continue;
      }
      try {
        message.ack();
        resolve();
      } catch (error) {
        reject(error);
      }
    }
  };

  /** A delivery was settled (or handed back): frees a slot. @internal */
  settled(delivery: NatsDelivery): void {
    if (!this.#unsettled.delete(delivery)) return;
    const wake = this.#credit;
    this.#credit = undefined;
    wake?.();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const wake = this.#credit;
    this.#credit = undefined;
    wake?.();
    await this.#messages?.close().catch(() => undefined);
    await this.#loop;
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepAlive);
    // Unsettled deliveries go back at once instead of waiting for AckWait.
    for (const delivery of [...this.#unsettled]) delivery.handBack();
    this.adapter.forget(this);
  }
}

/** One JetStream message as the runtime sees it. */
class NatsDelivery implements Delivery {
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string;
  readonly timestamp: number;
  /** When it was handed to the runtime (`performance.now()`). */
  readonly handedAt = performance.now();
  #settled = false;

  constructor(
    private readonly consumption: NatsConsumption,
    readonly raw: JsMsg,
  ) {
    this.payload = raw.data;
    const headers: Record<string, string> = {};
    let key: string | undefined;
    let msgId: string | undefined;
    const native = raw.headers;
    if (native) {
      for (const name of native.keys()) {
        const value = native.get(name);
        if (name === KEY_HEADER) key = value;
        else if (name === MSG_ID_HEADER) msgId = value;
        else if (!name.startsWith('Nats-')) headers[name] = value;
      }
    }
    this.headers = headers;
    this.key = key;
    this.attempt = raw.info.deliveryCount;
    this.nativeId = msgId ?? `${raw.info.stream}:${raw.seq}`;
    this.timestamp = Math.floor(Number(raw.info.timestampNanos) / 1_000_000);
  }

  async ack(): Promise<void> {
    this.#settle();
    if (!this.consumption.confirmAcks) return this.consumption.ack(this.raw);
    try {
      await this.consumption.ack(this.raw);
    } catch (error) {
      throw new ConnectionError(`JetStream did not confirm the ack; the server redelivers after AckWait: ${String(error)}`, { cause: error });
    }
  }

  async nack(delayMs: number): Promise<void> {
    this.#settle();
    this.raw.nak(delayMs > 0 ? Math.ceil(delayMs) : undefined);
  }

  /** Gives the message back for immediate redelivery (consumer closed with it unsettled). */
  handBack(): void {
    if (this.#settled) return;
    this.#settle();
    this.raw.nak();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.consumption.settled(this);
  }
}

function parseCreateOptions(raw: Readonly<Record<string, unknown>> | undefined): NatsCreateOptions {
  if (!raw) return {};
  const { stream, consumer, ackWaitMs } = raw;
  if (stream !== undefined && (typeof stream !== 'object' || stream === null)) throw new ConfigError('createOptions.stream must be an object.');
  if (consumer !== undefined && (typeof consumer !== 'object' || consumer === null)) throw new ConfigError('createOptions.consumer must be an object.');
  if (ackWaitMs !== undefined && !(typeof ackWaitMs === 'number' && ackWaitMs > 0)) throw new ConfigError('createOptions.ackWaitMs must be a positive number.');
  return { stream: stream as Partial<StreamConfig> | undefined, consumer: consumer as Partial<ConsumerConfig> | undefined, ackWaitMs: ackWaitMs as number | undefined };
}

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

function isReconnecting(nc: NatsConnection): boolean {
  return (nc as unknown as { isReconnecting?: () => boolean }).isReconnecting?.() === true;
}

function isTransient(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error).toLowerCase();
  return text.includes('timeout') || text.includes('disconnect') || text.includes('reconnect') || text.includes('503') || text.includes('connection');
}

function translate(error: unknown, context: string): OmniQueueError {
  if (error instanceof OmniQueueError) return error;
  const message = `${context}: ${(error as Error)?.message ?? String(error)}`;
  if (error instanceof JetStreamApiError) {
    return error.status >= 500 ? new PublishError(message, { cause: error }) : new ConfigError(message, { cause: error });
  }
  return new ConnectionError(message, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
