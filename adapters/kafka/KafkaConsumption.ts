import type { Consumer, ConsumerConfig, EachBatchPayload, IHeaders, KafkaMessage, Message as ProducerMessage } from 'kafkajs';
import type { Consumption, Delivery, DeliveryListener } from '../../runtime/contract.js';
import { ConnectionError, TimeoutError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/Logger.js';
import { WireHeader } from '../../runtime/wire.js';
import { PartitionLedger } from './PartitionLedger.js';

/** Headers the Kafka adapter maintains itself. */
export const KafkaHeader = {
  /** Epoch milliseconds before which the message must not be handed to a handler. */
  NotBefore: 'omniqueue-not-before',
} as const;

/** What a consumption needs from its adapter. */
export interface ConsumptionContext {
  /** A new kafkajs consumer for the group. */
  createConsumer(config: ConsumerConfig): Consumer;
  /** Publishes one message with acks=all; resolves when the broker acknowledged it. */
  republish(topic: string, message: ProducerMessage): Promise<void>;
  readonly logger: Logger;
  /** How long `consume` waits for the first group join. */
  readonly joinTimeoutMs: number;
}

/** Settings of one consumption. */
export interface ConsumptionSettings {
  readonly topic: string;
  readonly retryTopic: string;
  readonly group: string;
  readonly prefetch: number;
  readonly consumer: Omit<ConsumerConfig, 'groupId'>;
}

/** A not-before in the past (or this close to now) counts as due. */
const DUE_SLACK_MS = 5;
/** How often a batch waiting for credit heartbeats and re-checks for a rebalance. */
const CREDIT_WAIT_MS = 500;
/** kafkajs' default `heartbeatInterval`, used when the settings give none. */
const DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000;
const SETTLED: Promise<void> = Promise.resolve();
const EMPTY_PAYLOAD = new Uint8Array(0);

/** One assigned partition and the deliveries handed out from it. @internal */
export class PartitionState {
  readonly ledger: PartitionLedger;
  /** Set when the partition was revoked (or re-seeked): its deliveries' settlements are no-ops. */
  revoked = false;
  resumeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly isRetry: boolean,
    startAt?: number,
  ) {
    this.ledger = new PartitionLedger(startAt);
  }
}

function stateKey(topic: string, partition: number): string {
  return `${partition}\u0000${topic}`;
}

/** Converts kafkajs headers (Buffer, string or repeated) to the contract's string map. */
export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  if (!headers) return result;
  for (const name in headers) {
    let value = headers[name];
    if (Array.isArray(value)) value = value[value.length - 1];
    if (value === undefined || value === null) continue;
    result[name] = typeof value === 'string' ? value : value.toString('utf8');
  }
  return result;
}

/** First wait before rejoining after a crash kafkajs does not restart; doubles up to the cap. */
const RECOVER_FIRST_DELAY_MS = 1_000;
const RECOVER_MAX_DELAY_MS = 30_000;

/**
 * One kafkajs consumer of a group, subscribed to the topic and to the group's retry topic.
 *
 * Uses `eachBatch` with manual offset handling (`eachBatchAutoResolve: false`, `autoCommit: false`):
 * `resolveOffset` only moves kafkajs' fetch position past the messages handed to the runtime, and
 * this class commits — through `commitOffsets` — only the contiguous settled position of each
 * partition ({@link PartitionLedger}). `eachMessage` with `partitionsConsumedConcurrently` cannot do
 * this: it allows at most one message in flight per partition, so prefetch > 1 would need more
 * partitions than messages.
 */
export class KafkaConsumption implements Consumption {
  readonly #consumer: Consumer;
  readonly #states = new Map<string, PartitionState>();
  readonly #dirty = new Set<PartitionState>();
  #unsettled = 0;
  /** Resolves when a delivery is released (or the wait times out); shared by every batch waiting for credit. */
  #creditReleased: Promise<void> | undefined;
  #wakeCreditWaiters: (() => void) | undefined;
  #creditTimer: NodeJS.Timeout | undefined;
  /** When the batches waiting for credit next heartbeat (epoch ms). */
  #nextHeartbeatAt = 0;
  readonly #heartbeatEveryMs: number;
  #committing: Promise<void> | undefined;
  #stopped = false;
  #closed: Promise<void> | undefined;
  #joined: (() => void) | undefined;
  #recoverTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly context: ConsumptionContext,
    private readonly settings: ConsumptionSettings,
    private readonly listener: DeliveryListener,
  ) {
    this.#consumer = context.createConsumer({ ...settings.consumer, groupId: settings.group, allowAutoTopicCreation: false });
    this.#heartbeatEveryMs = settings.consumer.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  }

  /** Joins the group and starts fetching; resolves after the first assignment. */
  async start(): Promise<void> {
    const consumer = this.#consumer;
    const joined = new Promise<void>((resolve) => (this.#joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, (event) => this.#onAssignment(event.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.context.logger[restart ? 'warn' : 'error'](
        { topic: this.settings.topic, group: this.settings.group, err: error.message, restart },
        restart ? 'kafka consumer crashed; kafkajs restarts it' : 'kafka consumer crashed on an error kafkajs does not retry; restarting it',
      );
      if (!restart) this.#recover(1);
    });
    try {
      await this.#run();
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw new ConnectionError(`Kafka consumer of group '${this.settings.group}' on '${this.settings.topic}' could not start: ${(error as Error).message}`, { cause: error });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.context.joinTimeoutMs)));
    const outcome = await Promise.race([joined, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      await this.close();
      throw new TimeoutError(`Kafka consumer of group '${this.settings.group}' did not join within ${this.context.joinTimeoutMs} ms.`);
    }
  }

  async #run(): Promise<void> {
    const consumer = this.#consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [this.settings.topic, this.settings.retryTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(2, Math.min(this.settings.prefetch, 8)),
      eachBatch: (payload) => this.#eachBatch(payload),
    });
  }

  /**
   * kafkajs stops a consumer for good after an error it does not count as retriable (it has already
   * disconnected it): join the group again, with backoff, until it works or the consumption is
   * stopped. Partitions come back through a new assignment, from the committed offsets.
   */
  #recover(attempt: number): void {
    if (this.#stopped) return;
    const delayMs = Math.min(RECOVER_MAX_DELAY_MS, RECOVER_FIRST_DELAY_MS * 2 ** (attempt - 1));
    this.#recoverTimer = setTimeout(() => {
      this.#recoverTimer = undefined;
      if (this.#stopped) return;
      this.#run().then(
        () => this.context.logger.warn({ topic: this.settings.topic, group: this.settings.group, attempt }, 'kafka consumer rejoined after a crash'),
        (error: unknown) => {
          this.context.logger.error({ topic: this.settings.topic, group: this.settings.group, attempt, err: (error as Error).message }, 'kafka consumer could not rejoin; trying again');
          void this.#consumer.disconnect().catch(() => undefined).then(() => this.#recover(attempt + 1));
        },
      );
    }, delayMs);
  }

  /** Unsettled deliveries of this consumer. */
  get unsettled(): number {
    return this.#unsettled;
  }

  #onAssignment(assignment: Record<string, number[]>): void {
    this.context.logger.debug({ topic: this.settings.topic, group: this.settings.group, assignment }, 'kafka: partitions assigned');
    const assigned = new Set<string>();
    for (const topic of Object.keys(assignment)) {
      for (const partition of assignment[topic] ?? []) assigned.add(stateKey(topic, partition));
    }
    for (const [key, state] of this.#states) {
      if (assigned.has(key)) {
        // Kept across the rebalance: kafkajs would re-fetch from the committed position and hand out
        // the deliveries still in flight a second time; resume after the last one handed out.
        if (state.ledger.nextFetch !== undefined && !this.#stopped) {
          this.#consumer.seek({ topic: state.topic, partition: state.partition, offset: String(state.ledger.nextFetch) });
        }
      } else {
        this.#revoke(key, state);
      }
    }
    if (this.#stopped) this.#pauseAll();
    this.#joined?.();
    this.#joined = undefined;
  }

  #revoke(key: string, state: PartitionState): void {
    state.revoked = true;
    if (state.resumeTimer !== undefined) {
      // kafkajs keeps a paused partition paused across rebalances: un-pause it, or it would stay
      // stuck should the group hand it back to this consumer later.
      clearTimeout(state.resumeTimer);
      state.resumeTimer = undefined;
      if (!this.#stopped) {
        try {
          this.#consumer.resume([{ topic: state.topic, partitions: [state.partition] }]);
        } catch {
          // not running: nothing is paused
        }
      }
    }
    this.#states.delete(key);
    this.#dirty.delete(state);
    // Another member now owns the partition and starts from the committed position: deliveries
    // still open here are redelivered there, and settling them here changes nothing.
    this.#wakeCredit();
  }

  #state(topic: string, partition: number): PartitionState {
    const key = stateKey(topic, partition);
    let state = this.#states.get(key);
    if (!state) {
      state = new PartitionState(topic, partition, topic === this.settings.retryTopic);
      this.#states.set(key, state);
    }
    return state;
  }

  /**
   * Hands a fetched batch to the runtime, at most `prefetch` unsettled deliveries at a time.
   * kafkajs' fetch position (`resolveOffset`) is moved past the handed-out messages once per run of
   * messages handed out without a pause, always before an `await` or a return. `isStale` (a lookup
   * in kafkajs) is checked on entry and after each `await`: only another turn of the event loop can
   * seek the partition (a rebalance, or a rewind, which also revokes the state checked per message).
   */
  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const state = this.#state(batch.topic, batch.partition);
    const { ledger } = state;
    const prefetch = this.settings.prefetch;
    const live = (): boolean => !this.#stopped && !state.revoked && isRunning() && !isStale();
    let unresolved: string | undefined;
    try {
      if (!live()) return;
      for (const message of batch.messages) {
        if (this.#stopped || state.revoked || !isRunning()) return;
        const offset = Number(message.offset);
        if (!ledger.accepts(offset)) continue;
        const headers = headersToStrings(message.headers);
        const notBefore = headers[KafkaHeader.NotBefore];
        if (notBefore !== undefined) {
          const waitMs = Number(notBefore) - Date.now();
          if (waitMs > DUE_SLACK_MS) {
            if (state.isRetry) {
              // The retry topic holds only this group's retries, in the order they were nacked: wait for
              // the head without blocking the main topic.
              this.#holdUntilDue(state, waitMs);
              return;
            }
            // A delayed publish on the main topic: park it in this group's retry topic, then settle it.
            const token = ledger.track(offset);
            unresolved = message.offset;
            this.#forward(state, token, message, headers);
            continue;
          }
          delete headers[KafkaHeader.NotBefore];
        }
        if (this.#unsettled >= prefetch) {
          if (unresolved !== undefined) resolveOffset(unresolved);
          unresolved = undefined;
          do {
            await this.#creditReleasedOrTimeout();
            if (!live()) return;
            const now = Date.now();
            if (now >= this.#nextHeartbeatAt) {
              this.#nextHeartbeatAt = now + this.#heartbeatEveryMs / 2;
              try {
                await heartbeat();
              } catch {
                return; // a rebalance: kafkajs rejoins after this batch
              }
              if (!live()) return;
            }
          } while (this.#unsettled >= prefetch);
        }
        const token = ledger.track(offset);
        this.#unsettled++;
        unresolved = message.offset;
        this.listener(new KafkaDelivery(this, state, token, offset, batch.topic, batch.partition, message, headers));
      }
    } finally {
      if (unresolved !== undefined) resolveOffset(unresolved);
    }
  }

  #holdUntilDue(state: PartitionState, waitMs: number): void {
    const target = [{ topic: state.topic, partitions: [state.partition] }];
    this.#consumer.pause(target);
    clearTimeout(state.resumeTimer);
    state.resumeTimer = setTimeout(() => {
      state.resumeTimer = undefined;
      if (!this.#stopped && !state.revoked) this.#consumer.resume(target);
    }, waitMs);
  }

  #forward(state: PartitionState, token: number, message: KafkaMessage, headers: Record<string, string>): void {
    const copy: ProducerMessage = { key: message.key, value: message.value, headers, timestamp: message.timestamp };
    this.context.republish(this.settings.retryTopic, copy).then(
      () => this.#settled(state, token),
      (error: unknown) => {
        this.context.logger.warn({ topic: state.topic, partition: state.partition, err: (error as Error).message }, 'kafka: parking a delayed message failed; it will be fetched again');
        this.#rewind(state, Number(message.offset));
      },
    );
  }

  /**
   * One promise for every batch waiting for credit, resolved by the next release; a single timer
   * wakes the waiters every {@link CREDIT_WAIT_MS} at the latest so that they heartbeat and notice a
   * rebalance while handlers are slow (a wake-up with no credit just waits again).
   */
  #creditReleasedOrTimeout(): Promise<void> {
    this.#creditReleased ??= new Promise<void>((resolve) => (this.#wakeCreditWaiters = resolve));
    this.#creditTimer ??= setTimeout(this.#onCreditTimer, CREDIT_WAIT_MS).unref();
    return this.#creditReleased;
  }

  readonly #onCreditTimer = (): void => {
    this.#creditTimer = undefined;
    this.#wakeCredit();
  };

  #wakeCredit(): void {
    const wake = this.#wakeCreditWaiters;
    if (wake === undefined) return;
    this.#wakeCreditWaiters = undefined;
    this.#creditReleased = undefined;
    wake();
  }

  /** Called once per delivery when the runtime settled it (or gave it up). */
  released(): void {
    this.#unsettled--;
    if (this.#wakeCreditWaiters !== undefined) this.#wakeCredit();
  }

  /**
   * Marks a delivery settled. When that moves the partition's committable position, a commit is
   * scheduled: commits are coalesced (one in flight per consumer, carrying every partition that
   * moved) and not awaited by the settlement — like an AMQP basic.ack, the broker does not confirm
   * them one by one. A consumer that dies before its next commit redelivers (at least once); a
   * graceful close commits everything settled first.
   */
  #settled(state: PartitionState, token: number): void {
    if (state.revoked) return;
    if (state.ledger.settle(token) === undefined) return; // an older delivery is still open: committed with it later
    this.#dirty.add(state);
    this.#scheduleCommit();
  }

  /** Settles a delivery of this consumption (ack, or nack after its copy was re-published). */
  settle(delivery: KafkaDelivery): void {
    this.#settled(delivery.state, delivery.token);
  }

  /**
   * A settlement failed (its re-publish was refused): nothing is committed past it. The partition is
   * re-fetched from that offset, so the message is delivered again; deliveries after it that are
   * still open are redelivered too (at least once).
   */
  rewind(delivery: KafkaDelivery): void {
    this.#rewind(delivery.state, delivery.offset);
  }

  #rewind(state: PartitionState, offset: number): void {
    if (state.revoked || this.#closed) return;
    const key = stateKey(state.topic, state.partition);
    this.#revoke(key, state);
    this.#states.set(key, new PartitionState(state.topic, state.partition, state.isRetry, offset));
    try {
      this.#consumer.seek({ topic: state.topic, partition: state.partition, offset: String(offset) });
    } catch (error) {
      this.context.logger.warn({ topic: state.topic, partition: state.partition, err: (error as Error).message }, 'kafka: seek failed');
    }
  }

  #scheduleCommit(): void {
    if (this.#committing) return;
    this.#committing = (async () => {
      // Let settlements of the same tick join the commit.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#dirty.size > 0) {
        const offsets = [...this.#dirty].map((state) => ({ state, offset: state.ledger.committable! }));
        this.#dirty.clear();
        try {
          await this.#consumer.commitOffsets(offsets.map(({ state, offset }) => ({ topic: state.topic, partition: state.partition, offset: String(offset) })));
        } catch (error) {
          // Usually a rebalance in progress: partitions still owned are committed with the next try.
          this.context.logger.warn({ topic: this.settings.topic, group: this.settings.group, err: (error as Error).message }, 'kafka: offset commit failed; retrying');
          for (const { state } of offsets) if (!state.revoked) this.#dirty.add(state);
          if (this.#closed) break;
          await new Promise<void>((resolve) => setTimeout(resolve, 250));
        }
      }
      this.#committing = undefined;
    })();
  }

  async #flushCommits(): Promise<void> {
    while (this.#committing) await this.#committing;
  }

  #pauseAll(): void {
    try {
      this.#consumer.pause([{ topic: this.settings.topic }, { topic: this.settings.retryTopic }]);
    } catch {
      // not running yet: nothing to pause
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#recoverTimer);
    clearTimeout(this.#creditTimer);
    this.#creditTimer = undefined;
    for (const state of this.#states.values()) clearTimeout(state.resumeTimer);
    this.#pauseAll();
    this.#wakeCredit();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.stop();
      await this.#flushCommits();
      try {
        await this.#consumer.disconnect();
      } finally {
        for (const [key, state] of [...this.#states]) this.#revoke(key, state);
      }
    })();
    return this.#closed;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Builds the copy a nack re-publishes to the retry topic. */
  retryCopy(delivery: KafkaDelivery, delayMs: number): { topic: string; message: ProducerMessage } {
    const headers: Record<string, string> = { ...delivery.headers };
    headers[WireHeader.Id] ??= delivery.nativeId;
    headers[WireHeader.Attempt] = String(delivery.attempt + 1);
    if (delayMs > 0) headers[KafkaHeader.NotBefore] = String(Date.now() + delayMs);
    const raw = delivery.raw.message;
    return { topic: this.settings.retryTopic, message: { key: raw.key, value: raw.value, headers, timestamp: raw.timestamp } };
  }

  /** Publishes a retry copy; resolves when Kafka acknowledged it. */
  republish(topic: string, message: ProducerMessage): Promise<void> {
    return this.context.republish(topic, message);
  }
}

/** The native message behind a Kafka delivery. */
export interface KafkaRawMessage {
  readonly topic: string;
  readonly partition: number;
  readonly message: KafkaMessage;
}

/** One message handed to the runtime. */
export class KafkaDelivery implements Delivery {
  readonly payload: Uint8Array;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly raw: KafkaRawMessage;
  #state: 'open' | 'settling' | 'done' = 'open';

  constructor(
    private readonly consumption: KafkaConsumption,
    /** @internal */ readonly state: PartitionState,
    /** @internal */ readonly token: number,
    /** The message's offset in its partition. */
    readonly offset: number,
    topic: string,
    partition: number,
    message: KafkaMessage,
    readonly headers: Readonly<Record<string, string>>,
  ) {
    this.payload = message.value ?? EMPTY_PAYLOAD;
    this.key = message.key === null ? undefined : message.key.toString('utf8');
    const attempt = headers[WireHeader.Attempt];
    this.attempt = attempt === undefined ? 1 : attemptNumber(attempt);
    this.raw = { topic, partition, message };
  }

  /** `<topic>/<partition>/<offset>`. */
  get nativeId(): string {
    const { topic, partition, message } = this.raw;
    return `${topic}/${partition}/${message.offset}`;
  }

  /** The record's timestamp (epoch ms), when it has one. */
  get timestamp(): number | undefined {
    const timestamp = Number(this.raw.message.timestamp);
    return Number.isFinite(timestamp) && timestamp > 0 ? timestamp : undefined;
  }

  #claim(): boolean {
    if (this.#state !== 'open') return false;
    this.#state = 'settling';
    return true;
  }

  ack(): Promise<void> {
    if (!this.#claim()) return SETTLED;
    this.#state = 'done';
    this.consumption.released();
    this.consumption.settle(this);
    return SETTLED;
  }

  async nack(delayMs: number): Promise<void> {
    if (!this.#claim()) return;
    if (this.state.revoked) {
      // The partition moved to another member, which redelivers from the committed position.
      this.#state = 'done';
      this.consumption.released();
      return;
    }
    const copy = this.consumption.retryCopy(this, delayMs);
    try {
      await this.consumption.republish(copy.topic, copy.message);
    } catch (error) {
      this.#state = 'done';
      this.consumption.released();
      this.consumption.rewind(this);
      throw error;
    }
    this.#state = 'done';
    this.consumption.released();
    this.consumption.settle(this);
  }
}

/** The `omniqueue-attempt` header as an attempt number (1 when it is not a whole number ≥ 1). */
function attemptNumber(header: string): number {
  const attempt = Number(header);
  return Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
}
