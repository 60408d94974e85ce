import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, DeliveryListener, EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError, ConnectionError, InvalidMessageError, InvalidOptionsError, OmniQueueError, PayloadTooLargeError, PublishError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/Logger.js';
import { LuaScript } from './LuaScript.js';
import { SCHEDULE_SCRIPT, TRIM_SCRIPT } from './scripts.js';
import { StreamConsumer, type GroupKeys } from './StreamConsumer.js';
import { BODY_FIELD, KEY_FIELD } from './streamEntry.js';

/** Redis' largest bulk string (`proto-max-bulk-len` default): 512 MiB. */
export const REDIS_MAX_BULK_BYTES = 512 * 1024 * 1024;

/**
 * What the Redis Streams adapter can do.
 *
 * - `delay: 'emulated'`: Redis Streams have no delayed delivery. A nack with a delay puts a copy of
 *   the entry into the group's delayed sorted set (score = due time), and the group's consumers move
 *   it onto the group's private retry stream when it is due; a delayed publish waits in the topic's
 *   scheduled set and is moved onto the topic's stream by any consumer of the topic. Each move is one
 *   Lua script, so a process dying in between loses nothing. Cost: delayed entries are only moved
 *   while some consumer of the group (topic) runs, and at most `blockMs` late when the nack came
 *   from another process.
 * - `attempts: 'header'`: a nack re-adds a copy carrying `omniqueue-attempt`; Redis' own delivery
 *   counter of the pending entry adds the redeliveries after a consumer crash (XAUTOCLAIM).
 * - `persistent: false` by default: whether entries survive a Redis restart depends on the server's
 *   AOF/RDB settings, which the adapter cannot see. Set `persistent: true` when your Redis has AOF.
 */
export const REDIS_STREAMS_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: false,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'emulated',
  attempts: 'header',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
  maxPayloadBytes: REDIS_MAX_BULK_BYTES,
});

/** Settings of {@link RedisStreamsAdapter}. */
export interface RedisStreamsAdapterOptions {
  /** `redis://[user:password@]host:port[/db]`. Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** ioredis options (TLS, sentinels, password …), merged over the URL. */
  readonly redis?: RedisOptions;
  /**
   * Prepended to every key. Default `''`, so topic `orders` is the stream `orders` and a plain
   * `XADD orders * body …` producer writes to the same stream. Must not contain `{` or `}`.
   */
  readonly prefix?: string;
  /**
   * How long a pending entry must be idle before another consumer claims it with XAUTOCLAIM (the
   * owner died). Default: the group's retry `maxDelayMs`, at least {@link claimIdleFloorMs}. A live
   * consumer refreshes the idle time of entries its handlers still work on, so a slow handler is
   * not mistaken for a dead one.
   */
  readonly claimIdleMs?: number;
  /** Lower bound of the derived claim idle time. Default 15,000 ms. */
  readonly claimIdleFloorMs?: number;
  /** Longest XREADGROUP block; also how late a delayed retry nacked by another process can be. Default 1,000 ms. */
  readonly blockMs?: number;
  /** Declare `persistent: true` because the Redis server keeps its data (AOF). Default false. */
  readonly persistent?: boolean;
  /** Where the adapter logs recoveries and read failures. Default: silent. */
  readonly logger?: Logger;
}

/**
 * Retention of one topic, from `createOptions` of `ensure` / `subscribe` / `publish`.
 * Entries are trimmed every 100 publishes of this adapter (and on {@link RedisStreamsAdapter.trim}).
 */
export interface RedisStreamsRetention {
  /** Keep at most this many entries (≥ 1). */
  readonly maxLen?: number;
  /** Drop entries with an id below this one (`<ms>-<seq>` or `<ms>`). */
  readonly minId?: string;
  /**
   * Trim entries that some group has not acknowledged (or not read yet) too. Default false: trimming
   * stops at the oldest entry any group still needs.
   */
  readonly trimUnacknowledged?: boolean;
}

const TRIM_EVERY = 100;
const scheduleScript = new LuaScript(SCHEDULE_SCRIPT);
const trimScript = new LuaScript(TRIM_SCRIPT);

/**
 * Redis Streams adapter: topic = stream, group = Redis consumer group.
 *
 * - **Client:** ioredis. It is the client BullMQ is built on (so one client serves both Redis
 *   adapters), it is actively maintained by Redis Ltd., it exposes binary-safe `*Buffer` replies for
 *   payload bytes, auto-pipelining for publish throughput, Sentinel and Cluster, and reconnects by
 *   itself with backoff, replaying queued commands.
 * - **Topology:** `ensure` runs `XGROUP CREATE <topic> <group> $ MKSTREAM`: a group gets every entry
 *   added after it was created (`$`), even while none of its consumers runs. Each group also gets a
 *   private retry stream and delayed set (keys `{<topic>}:omniqueue:…`, same cluster slot as the
 *   topic).
 * - **Publish:** `XADD <topic> * body <payload> [omniqueue-key <key>] <header> <value> …`; resolves
 *   on Redis' reply. A plain XREAD client reads the JSON bytes in `body` and the headers as fields.
 * - **Consume:** each consumer has its own connection and blocks on `XREADGROUP … COUNT <free
 *   prefetch credit>` over its retry stream and the topic stream; ack = `XACK`; nack = Lua
 *   (XACK + copy with `omniqueue-attempt` to the retry stream, or to the delayed set); crashed
 *   consumers' entries are taken over with `XAUTOCLAIM` after the claim idle time; `close` hands
 *   unsettled entries back at once.
 * - **Dead letters:** the runtime's dead-letter topic (another stream).
 * - **Restart:** on a Redis restart without persistence every stream, group and delayed set is gone;
 *   publishes wait for the reconnection (or reject with a retryable error), and consumers recreate
 *   their group from the start of the new stream, so every entry added after the restart is
 *   delivered. With AOF nothing acknowledged by Redis is lost.
 */
export class RedisStreamsAdapter implements Adapter {
  readonly name = 'redis-streams';
  readonly features: AdapterFeatures;
  readonly #options: RedisStreamsAdapterOptions;
  readonly #prefix: string;
  readonly #consumers = new Set<StreamConsumer>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #retention = new Map<string, RedisStreamsRetention>();
  readonly #sendsSinceTrim = new Map<string, number>();
  #command: Redis | undefined;
  #closed = false;

  constructor(options: RedisStreamsAdapterOptions = {}) {
    this.#options = options;
    this.#prefix = options.prefix ?? '';
    if (/[{}]/.test(this.#prefix)) throw new ConfigError(`redis-streams prefix must not contain '{' or '}', got '${this.#prefix}'.`);
    this.features = options.persistent ? Object.freeze({ ...REDIS_STREAMS_FEATURES, persistent: true }) : REDIS_STREAMS_FEATURES;
  }

  /** The command connection (publishes, acks, scripts), for tests and tools. */
  get redis(): Redis {
    if (!this.#command) throw new ClosedError('The redis-streams adapter (not connected)');
    return this.#command;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The redis-streams adapter');
    if (this.#command) return;
    const command = this.#open({ enableAutoPipelining: true });
    try {
      await command.connect();
      const info = String(await command.call('INFO', 'server'));
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
        throw new ConfigError(`redis-streams needs Redis ≥ 6.2 (XAUTOCLAIM); the server is ${version[1]}.${version[2]}.`);
      }
    } catch (error) {
      command.disconnect();
      if (error instanceof OmniQueueError) throw error;
      throw new ConnectionError(`Could not connect to Redis: ${messageOf(error)}`, { cause: error });
    }
    this.#command = command;
  }

  #open(extra: RedisOptions): Redis {
    const options: RedisOptions = { ...this.#options.redis, lazyConnect: true, protocol: 2, ...extra };
    const redis = this.#options.url ? new Redis(this.#options.url, options) : new Redis({ host: '127.0.0.1', port: 6379, ...options });
    redis.on('error', (error: Error) => this.#options.logger?.debug({ err: error.message }, 'redis connection error'));
    return redis;
  }

  /** Key of a topic's stream. */
  streamKey(topic: string): string {
    return `${this.#prefix}${topic}`;
  }

  /** Keys of one group of a topic. */
  groupKeys(topic: string, group: string): GroupKeys {
    const tag = `{${this.#prefix}${topic}}:omniqueue`;
    return { main: this.streamKey(topic), retry: `${tag}:retry:${group}`, delayed: `${tag}:delayed:${group}`, scheduled: `${tag}:scheduled` };
  }

  async ensure(request: EnsureRequest): Promise<void> {
    const command = this.#ready();
    const retention = parseRetention(request.createOptions);
    if (retention) this.#retention.set(request.topic, retention);
    if (request.group !== undefined) await this.#ensureGroup(command, request.topic, request.group);
  }

  async #ensureGroup(command: Redis, topic: string, group: string, start: '$' | '0' = '$'): Promise<void> {
    const keys = this.groupKeys(topic, group);
    await createGroup(command, keys.main, group, start);
    await createGroup(command, keys.retry, group, '0');
  }

  async send(message: WireMessage): Promise<void> {
    const command = this.#ready();
    // JSON bodies go as the text they already are (no UTF-8 encode here; ioredis writes strings as they are).
    const text = message.payloadText;
    let body: string | Buffer;
    if (text !== undefined) {
      // A string of n UTF-16 units is at most 3n UTF-8 bytes: only long ones need counting.
      const size = text.length * 3 <= REDIS_MAX_BULK_BYTES ? text.length : Buffer.byteLength(text);
      if (size > REDIS_MAX_BULK_BYTES) throw new PayloadTooLargeError(size, REDIS_MAX_BULK_BYTES, 'Redis');
      body = text;
    } else {
      const payload = message.payload;
      if (payload.byteLength > REDIS_MAX_BULK_BYTES) throw new PayloadTooLargeError(payload.byteLength, REDIS_MAX_BULK_BYTES, 'Redis');
      body = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    }
    const fields: (string | Buffer)[] = [BODY_FIELD, body];
    if (message.key !== undefined) fields.push(KEY_FIELD, message.key);
    for (const name of Object.keys(message.headers)) {
      if (name === BODY_FIELD || name === KEY_FIELD) throw new InvalidMessageError(`Header '${name}' is the name of a redis-streams field; rename the header.`);
      fields.push(name, message.headers[name]!);
    }
    const sent =
      message.delayMs > 0
        ? scheduleScript.run(command, [this.groupKeys(message.topic, '_').scheduled], [Math.ceil(message.delayMs), randomUUID(), ...fields])
        : command.xadd(this.streamKey(message.topic), '*', ...fields);
    this.#pending.add(sent);
    try {
      await sent;
    } catch (error) {
      throw toPublishError(error);
    } finally {
      this.#pending.delete(sent);
    }
    this.#maybeTrim(message.topic);
  }

  #maybeTrim(topic: string): void {
    if (!this.#retention.has(topic)) return;
    const count = (this.#sendsSinceTrim.get(topic) ?? 0) + 1;
    if (count < TRIM_EVERY) {
      this.#sendsSinceTrim.set(topic, count);
      return;
    }
    this.#sendsSinceTrim.set(topic, 0);
    const trimming = this.trim(topic).catch((error) => this.#options.logger?.warn({ topic, err: messageOf(error) }, 'redis-streams trim failed'));
    this.#pending.add(trimming);
    void trimming.finally(() => this.#pending.delete(trimming));
  }

  /**
   * Applies the topic's retention now (or `retention` when given). Never removes an entry that a
   * group has not acknowledged unless `trimUnacknowledged` is set. Resolves with the entries removed.
   */
  async trim(topic: string, retention: RedisStreamsRetention | undefined = this.#retention.get(topic)): Promise<number> {
    const command = this.#ready();
    if (!retention) return 0;
    const removed = await trimScript.run(command, [this.streamKey(topic)], [retention.maxLen ?? '', retention.minId ?? '', retention.trimUnacknowledged ? 1 : 0]);
    return Number(removed);
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    const command = this.#ready();
    const retention = parseRetention(request.createOptions);
    if (retention) this.#retention.set(request.topic, retention);
    // Creating the group here too mirrors the memory adapter: consuming a group makes it exist.
    await this.#ensureGroup(command, request.topic, request.group);
    const floor = this.#options.claimIdleFloorMs ?? 15_000;
    const claimIdleMs = this.#options.claimIdleMs ?? Math.max(floor, request.retry?.maxDelayMs ?? 60_000);
    const consumer: StreamConsumer = new StreamConsumer({
      command,
      keys: this.groupKeys(request.topic, request.group),
      group: request.group,
      prefetch: request.prefetch,
      listener: onDelivery,
      claimIdleMs,
      blockMs: this.#options.blockMs ?? 1_000,
      logger: this.#options.logger,
      openBlocking: async () => {
        const blocking = this.#open({ maxRetriesPerRequest: null, enableAutoPipelining: false, connectionName: `omniqueue:${consumer.name}` });
        await blocking.connect();
        return blocking;
      },
      recreateGroup: () => this.#ensureGroup(command, request.topic, request.group, '0'),
    });
    await consumer.start();
    this.#consumers.add(consumer);
    return {
      stop: () => consumer.stop(),
      close: async () => {
        await consumer.close();
        this.#consumers.delete(consumer);
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    this.#consumers.clear();
    await Promise.allSettled([...this.#pending]);
    const command = this.#command;
    this.#command = undefined;
    if (command) await command.quit().catch(() => command.disconnect());
  }

  #ready(): Redis {
    if (this.#closed) throw new ClosedError('The redis-streams adapter');
    if (!this.#command) throw new ClosedError('The redis-streams adapter (connect() was not called)');
    return this.#command;
  }
}

async function createGroup(command: Redis, key: string, group: string, start: '$' | '0'): Promise<void> {
  try {
    await command.xgroup('CREATE', key, group, start, 'MKSTREAM');
  } catch (error) {
    if (!messageOf(error).startsWith('BUSYGROUP')) throw new ConnectionError(`XGROUP CREATE ${key} ${group} failed: ${messageOf(error)}`, { cause: error });
  }
}

function parseRetention(options: Readonly<Record<string, unknown>> | undefined): RedisStreamsRetention | undefined {
  if (!options) return undefined;
  const { maxLen, minId, trimUnacknowledged } = options;
  if (maxLen === undefined && minId === undefined) return undefined;
  if (maxLen !== undefined && (!Number.isInteger(maxLen) || (maxLen as number) < 1)) throw new InvalidOptionsError(`createOptions.maxLen must be an integer ≥ 1, got ${String(maxLen)}.`);
  if (minId !== undefined && (typeof minId !== 'string' || !/^\d+(-\d+)?$/.test(minId))) throw new InvalidOptionsError(`createOptions.minId must be a stream id like '1700000000000-0', got ${String(minId)}.`);
  if (trimUnacknowledged !== undefined && typeof trimUnacknowledged !== 'boolean') throw new InvalidOptionsError('createOptions.trimUnacknowledged must be a boolean.');
  return { maxLen: maxLen as number | undefined, minId: minId as string | undefined, trimUnacknowledged: trimUnacknowledged as boolean | undefined };
}

function toPublishError(error: unknown): OmniQueueError {
  if (error instanceof OmniQueueError) return error;
  const message = messageOf(error);
  if (/max retries|Connection is closed|ECONNREFUSED|Stream isn't writeable/i.test(message)) {
    return new ConnectionError(`Redis publish failed, connection lost: ${message}`, { cause: error });
  }
  return new PublishError(`Redis rejected the publish: ${message}`, { cause: error });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
