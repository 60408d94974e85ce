import { DelayedError, FlowProducer, Queue, Worker, type ConnectionOptions, type FlowJob, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, Delivery, DeliveryListener, EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, OmniQueueError, PayloadTooLargeError, PublishError, TimeoutError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/Logger.js';
import { isJsonContentType, WireHeader } from '../../runtime/wire.js';

/** Redis' largest bulk string: a job's data cannot be larger. */
const REDIS_MAX_BULK_BYTES = 512 * 1024 * 1024;

/**
 * What the BullMQ adapter can do.
 *
 * - `delay: 'native'`: delayed publish = BullMQ `delay` job option; `nack(delayMs)` =
 *   `job.moveToDelayed(now + delayMs)` (BullMQ's delayed set).
 * - `attempts: 'broker'`: BullMQ's `attemptsStarted` counter, raised each time a worker moves the
 *   job to active (after a nack and after stalled-job recovery alike).
 * - Retries: the runtime's retry policy only. Jobs are added with BullMQ's default `attempts: 1`
 *   and never fail through BullMQ; a nack moves the job to delayed itself (DelayedError), so the
 *   two retry mechanisms never stack.
 * - `persistent: false` by default: it depends on the Redis server's AOF/RDB settings.
 */
export const BULLMQ_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: false,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'native',
  attempts: 'broker',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: REDIS_MAX_BULK_BYTES,
});

/** Settings of {@link BullMQAdapter}. */
export interface BullMQAdapterOptions {
  /** `redis://[user:password@]host:port[/db]`. Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** ioredis options merged over the URL (BullMQ connects through ioredis). */
  readonly redis?: RedisOptions;
  /** BullMQ key prefix. Default `bull`, BullMQ's own default, so Bull Board and plain BullMQ code see the queues. */
  readonly prefix?: string;
  /** BullMQ `lockDuration`: a job whose worker stopped renewing its lock this long is stalled. Default 30,000 ms. */
  readonly lockDurationMs?: number;
  /** BullMQ `stalledInterval`: how often workers look for stalled jobs. Default 30,000 ms. */
  readonly stalledIntervalMs?: number;
  /**
   * BullMQ `maxStalledCount`. Default 1,000,000: a job of a crashed worker always goes back to wait
   * (BullMQ's default of 1 would fail it on its second stall, and a failed job is lost to the group);
   * the runtime's `maxAttempts` dead-letters a message that keeps failing.
   */
  readonly maxStalledCount?: number;
  /** Declare `persistent: true` because the Redis server keeps its data (AOF). Default false. */
  readonly persistent?: boolean;
  /** Where the adapter logs worker errors. Default: silent. */
  readonly logger?: Logger;
}

/** The job data OmniQueue writes: the body as JSON (or base64 bytes), the headers and the key. */
export interface BullMQEnvelope {
  /** Marks OmniQueue's envelope; a job without it is a foreign job whose whole `data` is the body. */
  readonly omniqueue: 1;
  /** The JSON body, when the payload is JSON. */
  readonly body?: unknown;
  /** The payload as base64, when it is not JSON. */
  readonly payload?: string;
  /** Every header, OmniQueue's own included. */
  readonly headers: Record<string, string>;
  /** Message key. */
  readonly key?: string;
}

/**
 * Longest wait for BullMQ's `completed` event after an ack. Past the job's lock duration the job is
 * BullMQ's again (its stalled check hands it back), so the wait is the lock duration, capped here.
 */
const COMPLETION_TIMEOUT_MS = 30_000;
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * BullMQ adapter. BullMQ has queues, not topics, so:
 *
 * - **Topology:** group `g` of topic `t` is the BullMQ queue `t.g` (OmniQueue names never contain
 *   BullMQ's forbidden `:`). The groups of a topic live in the Redis set
 *   `<prefix>:omniqueue:groups:<topic>`; `ensure` adds the group, so a group receives every message
 *   published after it joined, even while none of its workers runs. A hash
 *   `<prefix>:omniqueue:queues` refuses two topic/group pairs that would share a queue name
 *   (`a.b`+`c` vs `a`+`b.c`).
 * - **Publish:** reads the topic's groups and adds one job per group with
 *   `FlowProducer.addBulk` — BullMQ's own atomic multi-queue add (one MULTI/EXEC): either every
 *   group queue gets the job or none does. Resolves when Redis answered EXEC. A topic with a single
 *   group gets a plain `Queue.add` instead (atomic by itself, and much less work for Redis). The job `data` is
 *   `{ omniqueue: 1, body, headers, key }`, so a plain BullMQ worker reads `job.data.body`.
 * - **Consume:** one BullMQ `Worker` per consumer with `concurrency = prefetch`; ack = the job
 *   completes; nack = `job.moveToDelayed(now + delay)` and a `DelayedError` (BullMQ's documented
 *   manual-delay pattern); close hands unsettled jobs back the same way.
 * - **Crashed workers:** BullMQ's stalled-job check moves jobs whose lock expired back to wait.
 * - **Dead letters:** the runtime's dead-letter topic, i.e. the queue `<topic>.<group>.dlq.dlq`,
 *   with the reason in the `omniqueue-dlq-*` headers.
 * - **Foreign jobs** (`queue.add(name, data)` by plain BullMQ code on `t.g`): `data` as JSON is the
 *   body, the job id is the message id and its timestamp the publish time.
 *
 * The client is ioredis because it is what BullMQ itself runs on.
 */
export class BullMQAdapter implements Adapter {
  readonly name = 'bullmq';
  readonly features: AdapterFeatures;
  readonly #options: BullMQAdapterOptions;
  readonly #prefix: string;
  readonly #consumers = new Set<BullConsumer>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Groups with a running consumer, registered again when Redis comes back empty after a restart. */
  readonly #active = new Map<string, { topic: string; group: string }>();
  #command: Redis | undefined;
  #flow: FlowProducer | undefined;
  readonly #queues = new Map<string, Queue>();
  #queueConnection: Redis | undefined;
  #closed = false;

  constructor(options: BullMQAdapterOptions = {}) {
    this.#options = options;
    this.#prefix = options.prefix ?? 'bull';
    this.features = options.persistent ? Object.freeze({ ...BULLMQ_FEATURES, persistent: true }) : BULLMQ_FEATURES;
  }

  /** The BullMQ queue name of a group. */
  static queueName(topic: string, group: string): string {
    return `${topic}.${group}`;
  }

  /** BullMQ key prefix in use. */
  get prefix(): string {
    return this.#prefix;
  }

  /** Redis set holding the groups of `topic`. */
  groupsKey(topic: string): string {
    return `${this.#prefix}:omniqueue:groups:${topic}`;
  }

  #connection(extra: RedisOptions = {}): ConnectionOptions {
    const base: RedisOptions = { host: '127.0.0.1', port: 6379, ...this.#options.redis, ...extra };
    return (this.#options.url ? { ...base, url: this.#options.url } : base) as ConnectionOptions;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The bullmq adapter');
    if (this.#command) return;
    const options: RedisOptions = { ...this.#options.redis, lazyConnect: true, protocol: 2, enableAutoPipelining: true };
    const command = this.#options.url ? new Redis(this.#options.url, options) : new Redis({ host: '127.0.0.1', port: 6379, ...options });
    command.on('error', (error: Error) => this.#options.logger?.debug({ err: error.message }, 'redis connection error'));
    try {
      await command.connect();
    } catch (error) {
      command.disconnect();
      throw new ConnectionError(`Could not connect to Redis: ${messageOf(error)}`, { cause: error });
    }
    this.#command = command;
    // A Redis restart without persistence forgets the topic's group set: put back the groups whose
    // consumers run here, so publishes after the restart reach them again.
    command.on('ready', () => {
      for (const { topic, group } of this.#active.values()) void this.ensure({ topic, group }).catch(() => undefined);
    });
    this.#flow = new FlowProducer({ connection: this.#connection(), prefix: this.#prefix });
    this.#flow.on('error', (error: Error) => this.#options.logger?.debug({ err: error.message }, 'bullmq flow producer error'));
  }

  async ensure(request: EnsureRequest): Promise<void> {
    const command = this.#ready();
    if (request.group === undefined) return;
    const queue = BullMQAdapter.queueName(request.topic, request.group);
    const owner = JSON.stringify([request.topic, request.group]);
    const registry = `${this.#prefix}:omniqueue:queues`;
    await command.hsetnx(registry, queue, owner);
    const existing = await command.hget(registry, queue);
    if (existing !== owner) {
      throw new ConfigError(`BullMQ queue '${queue}' already belongs to topic/group ${existing}; topic '${request.topic}' with group '${request.group}' would share it. Rename one of them.`);
    }
    await command.sadd(this.groupsKey(request.topic), request.group);
  }

  async send(message: WireMessage): Promise<void> {
    const command = this.#ready();
    const payload = message.payload;
    if (payload.byteLength > REDIS_MAX_BULK_BYTES) throw new PayloadTooLargeError(payload.byteLength, REDIS_MAX_BULK_BYTES, 'Redis');
    const sent = (async () => {
      const groups = await command.smembers(this.groupsKey(message.topic));
      if (groups.length === 0) return;
      const data = envelopeOf(message);
      const opts = { delay: message.delayMs > 0 ? message.delayMs : undefined, removeOnComplete: true, removeOnFail: false };
      if (groups.length === 1) {
        // One group: a plain Queue.add (one script call, atomic on its own) is far lighter for
        // Redis than a flow; several groups need the flow's all-or-nothing MULTI/EXEC.
        const queue = this.#queue(BullMQAdapter.queueName(message.topic, groups[0]!));
        await queue.add(message.topic, data, opts);
        return;
      }
      const flows: FlowJob[] = groups.map((group) => ({ name: message.topic, queueName: BullMQAdapter.queueName(message.topic, group), data, opts }));
      await this.#flow!.addBulk(flows);
    })();
    this.#pending.add(sent);
    try {
      await sent;
    } catch (error) {
      throw toPublishError(error);
    } finally {
      this.#pending.delete(sent);
    }
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    this.#ready();
    await this.ensure(request);
    const consumer = new BullConsumer(BullMQAdapter.queueName(request.topic, request.group), request.prefetch, onDelivery, {
      connection: this.#connection({ maxRetriesPerRequest: null }),
      prefix: this.#prefix,
      lockDurationMs: this.#options.lockDurationMs ?? 30_000,
      stalledIntervalMs: this.#options.stalledIntervalMs ?? 30_000,
      maxStalledCount: this.#options.maxStalledCount ?? 1_000_000,
      logger: this.#options.logger,
    });
    await consumer.start();
    this.#consumers.add(consumer);
    const activeKey = `${request.topic}\u0000${request.group}\u0000${Math.random()}`;
    this.#active.set(activeKey, { topic: request.topic, group: request.group });
    return {
      stop: () => consumer.stop(),
      close: async () => {
        this.#active.delete(activeKey);
        await consumer.close();
        this.#consumers.delete(consumer);
      },
    };
  }

  /** The producer-side Queue of a group queue; all of them share one connection. */
  #queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (!queue) {
      this.#queueConnection ??= this.#openQueueConnection();
      queue = new Queue(name, { connection: this.#queueConnection, prefix: this.#prefix });
      queue.on('error', (error: Error) => this.#options.logger?.debug({ err: error.message }, 'bullmq queue error'));
      this.#queues.set(name, queue);
    }
    return queue;
  }

  #openQueueConnection(): Redis {
    const options: RedisOptions = { ...this.#options.redis, maxRetriesPerRequest: null };
    const redis = this.#options.url ? new Redis(this.#options.url, options) : new Redis({ host: '127.0.0.1', port: 6379, ...options });
    redis.on('error', (error: Error) => this.#options.logger?.debug({ err: error.message }, 'redis connection error'));
    return redis;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    this.#consumers.clear();
    await Promise.allSettled([...this.#pending]);
    await Promise.allSettled([...this.#queues.values()].map((queue) => queue.close()));
    this.#queues.clear();
    const queueConnection = this.#queueConnection;
    this.#queueConnection = undefined;
    if (queueConnection) await queueConnection.quit().catch(() => queueConnection.disconnect());
    await this.#flow?.close().catch(() => undefined);
    const command = this.#command;
    this.#command = undefined;
    if (command) await command.quit().catch(() => command.disconnect());
  }

  #ready(): Redis {
    if (this.#closed) throw new ClosedError('The bullmq adapter');
    if (!this.#command) throw new ClosedError('The bullmq adapter (connect() was not called)');
    return this.#command;
  }
}

interface ConsumerSettings {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  readonly logger: Logger | undefined;
}

/** One BullMQ Worker feeding the runtime. */
class BullConsumer {
  readonly #unsettled = new Set<BullDelivery>();
  readonly #completions = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  #worker: Worker | undefined;
  #stopped = false;
  #closed: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    private readonly prefetch: number,
    private readonly listener: DeliveryListener,
    private readonly settings: ConsumerSettings,
  ) {}

  async start(): Promise<void> {
    const worker = new Worker(this.queue, (job, token) => this.#process(job, token), {
      connection: this.settings.connection,
      prefix: this.settings.prefix,
      concurrency: this.prefetch,
      lockDuration: this.settings.lockDurationMs,
      stalledInterval: this.settings.stalledIntervalMs,
      maxStalledCount: this.settings.maxStalledCount,
      autorun: false,
    });
    worker.on('completed', (job: Job) => this.#completed(job.id));
    // Completion itself failed (e.g. Redis restarted and the job is gone): BullMQ reports it as failed.
    worker.on('failed', (job: Job | undefined, error: Error) => this.#completionFailed(job?.id, error));
    worker.on('error', (error: Error) => this.settings.logger?.warn({ queue: this.queue, err: error.message }, 'bullmq worker error'));
    this.#worker = worker;
    void worker.run().catch((error: unknown) => this.settings.logger?.error({ queue: this.queue, err: messageOf(error) }, 'bullmq worker stopped'));
    await worker.waitUntilReady();
  }

  #process(job: Job, token: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const delivery = new BullDelivery(this, job, token ?? '', resolve, reject);
      this.#unsettled.add(delivery);
      this.listener(delivery);
    });
  }

  #completed(id: string | undefined): void {
    if (id === undefined) return;
    const waiter = this.#completions.get(id);
    if (waiter) {
      this.#completions.delete(id);
      waiter.resolve();
    }
  }

  #completionFailed(id: string | undefined, error: Error): void {
    if (id === undefined) return;
    const waiter = this.#completions.get(id);
    if (waiter) {
      this.#completions.delete(id);
      waiter.reject(new ConnectionError(`BullMQ could not complete job ${id} in queue '${this.queue}': ${error.message}`, { cause: error }));
    }
  }

  /**
   * ack: the processor returns, BullMQ completes the job; resolves on the worker's `completed` event,
   * rejects on its `failed` event or once the job's lock has expired without either.
   */
  async ack(delivery: BullDelivery): Promise<void> {
    if (!this.#take(delivery)) return;
    const id = delivery.job.id!;
    const timeoutMs = Math.min(COMPLETION_TIMEOUT_MS, this.settings.lockDurationMs);
    let timer: NodeJS.Timeout | undefined;
    const completed = new Promise<void>((resolve, reject) => {
      this.#completions.set(id, { resolve, reject });
      timer = setTimeout(() => {
        this.#completions.delete(id);
        reject(new TimeoutError(`BullMQ did not confirm completion of job ${id} in queue '${this.queue}' within ${timeoutMs} ms (its lock duration); its stalled check hands it back.`));
      }, timeoutMs);
    });
    delivery.resolve();
    try {
      await completed;
    } finally {
      clearTimeout(timer);
    }
  }

  /** nack: move the job to BullMQ's delayed set, then end the processor with DelayedError. */
  async nack(delivery: BullDelivery, delayMs: number): Promise<void> {
    if (!this.#take(delivery)) return;
    try {
      await delivery.job.moveToDelayed(Date.now() + Math.max(0, Math.ceil(delayMs)), delivery.token);
    } finally {
      // Either way the job is BullMQ's again: moved to delayed, or left active for the stalled check.
      delivery.reject(new DelayedError());
    }
  }

  #take(delivery: BullDelivery): boolean {
    if (delivery.settled) return false;
    delivery.settled = true;
    this.#unsettled.delete(delivery);
    return true;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#worker?.pause(true);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await this.stop();
    const released = await Promise.allSettled([...this.#unsettled].map((delivery) => this.nack(delivery, 0)));
    const failed = released.some((result) => result.status === 'rejected');
    // A release that failed leaves its job active; BullMQ's stalled check hands it back after the lock expires.
    await this.#worker?.close(failed);
  }
}

/** One BullMQ job handed to the runtime. */
class BullDelivery implements Delivery {
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string | undefined;
  readonly timestamp: number;
  settled = false;

  constructor(
    private readonly consumer: BullConsumer,
    readonly job: Job,
    readonly token: string,
    readonly resolve: () => void,
    readonly reject: (error: Error) => void,
  ) {
    const data: unknown = job.data;
    if (isEnvelope(data)) {
      this.payload = data.payload !== undefined ? Buffer.from(data.payload, 'base64') : Buffer.from(JSON.stringify(data.body) ?? 'null');
      this.headers = data.headers;
      this.key = data.key;
    } else {
      this.payload = Buffer.from(JSON.stringify(data) ?? 'null');
      this.headers = {};
      this.key = undefined;
    }
    this.attempt = Math.max(1, job.attemptsStarted || 1);
    this.nativeId = job.id;
    this.timestamp = job.timestamp;
  }

  get raw(): Job {
    return this.job;
  }

  ack(): Promise<void> {
    return this.consumer.ack(this);
  }

  nack(delayMs: number): Promise<void> {
    return this.consumer.nack(this, delayMs);
  }
}

function isEnvelope(data: unknown): data is BullMQEnvelope {
  return typeof data === 'object' && data !== null && (data as { omniqueue?: unknown }).omniqueue === 1 && typeof (data as { headers?: unknown }).headers === 'object';
}

/** Builds the job data: JSON bodies stay JSON (readable by plain BullMQ workers), other payloads travel as base64. */
function envelopeOf(message: WireMessage): BullMQEnvelope {
  const headers = { ...message.headers };
  const key = message.key;
  if (isJsonContentType(headers[WireHeader.ContentType])) {
    if (message.body !== undefined && !(message.body instanceof Uint8Array)) return { omniqueue: 1, body: message.body, headers, key };
    try {
      return { omniqueue: 1, body: JSON.parse(textDecoder.decode(message.payload)), headers, key };
    } catch {
      /* not JSON after all (a dead-lettered poison payload): send the bytes */
    }
  }
  return { omniqueue: 1, payload: Buffer.from(message.payload).toString('base64'), headers, key };
}

function toPublishError(error: unknown): OmniQueueError {
  if (error instanceof OmniQueueError) return error;
  const message = messageOf(error);
  if (/max retries|Connection is closed|ECONNREFUSED|Stream isn't writeable/i.test(message)) {
    return new ConnectionError(`BullMQ publish failed, connection lost: ${message}`, { cause: error });
  }
  return new PublishError(`BullMQ rejected the publish: ${message}`, { cause: error });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
