/**
 * The adapter contract: the only thing a broker adapter implements.
 *
 * An adapter is translation and nothing else. It turns a {@link WireMessage} into the broker's
 * native publish, and the broker's native delivery into a {@link Delivery}. Retries, backoff,
 * dead-lettering policy, idempotency, schema validation, concurrency limits, tracing and metrics
 * live once, in the runtime pipeline, and never inside an adapter.
 *
 * The rules every adapter follows (the conformance suite in `test/conformance` checks them):
 *
 * 1. **Topology.** A topic is the unit producers publish to. A group is a named, durable-where-the-
 *    broker-allows cursor on a topic: every group gets every message published after the group was
 *    created; inside a group each message goes to one consumer. {@link Adapter.ensure} creates a
 *    topic and, when given, a group; it is idempotent. Names arrive already validated by the runtime
 *    (`[A-Za-z0-9._-]`, 1–200 chars); the adapter maps them to the broker's own rules.
 * 2. **Publish resolves when the broker has accepted the message** (publisher confirm, acks=all,
 *    PubAck, HTTP 200 …), never earlier. A rejected publish rejects with an `OmniQueueError`
 *    (`PublishError`, `PayloadTooLargeError`, `TooManyHeadersError` …); it never resolves silently.
 * 3. **Wire format.** The payload bytes are sent unchanged as the broker's body; every header in
 *    {@link WireMessage.headers} is sent as a native header/attribute/property (the runtime already
 *    put `omniqueue-id`, `omniqueue-published-at`, `content-type` and trace context there); the key
 *    maps to the broker's native key (partition key, routing key, message group…). A plain client of
 *    that broker therefore reads JSON bytes and native headers.
 * 4. **Delivery.** The adapter hands each received message to the runtime once, through the
 *    `onDelivery` callback, with `attempt` taken from the broker's own delivery counter where one
 *    exists, else from the `omniqueue-attempt` header (which the adapter then maintains when it
 *    re-sends). It never has more than `prefetch` unsettled deliveries outstanding to one consumer.
 * 5. **Settlement.** Each delivery is settled exactly once by the runtime:
 *    - `ack()` removes the message for this group (delete, commit, basic.ack, complete …) and
 *      resolves when the broker has taken the ack where the protocol confirms it;
 *    - `nack(delayMs)` makes the message available again to the group, no sooner than `delayMs`,
 *      with `attempt + 1`, and without blocking other messages of the group (an adapter that can
 *      only emulate the delay says how in {@link AdapterFeatures.delay});
 *    - `deadLetter(record)`, when present, moves the message to the broker's native dead-letter
 *      destination with the record's reason. When absent, the runtime publishes the dead-letter
 *      record to the dead-letter topic and then calls `ack()`.
 * 6. **Redelivery.** A delivery that is never settled (the consumer process died, the consumption
 *    was closed with the delivery still open) is redelivered to another consumer of the group
 *    later: at-least-once, never lost. Adapters that cannot promise this declare it.
 * 7. **Close.** {@link Consumption.stop} stops fetching new messages; deliveries already handed out
 *    stay settleable. {@link Consumption.close} then releases the consumer: anything still
 *    unsettled goes back to the broker for redelivery. {@link Adapter.close} flushes every
 *    publish that is under way (each either resolves or rejects; none vanish) and then closes the
 *    connection.
 * 8. **Connection loss.** An adapter reconnects by itself with backoff and resumes its consumers.
 *    A publish made while disconnected either waits for the connection or rejects with a
 *    `ConnectionError`; it never vanishes.
 *
 * @packageDocumentation
 */

/** How an adapter delays a redelivery or a publish. */
export const DelaySupport = {
  /** The broker delays natively (timer, visibility timeout, nak delay, TTL retry queue …). */
  Native: 'native',
  /** The adapter emulates the delay; its docs say how and what it costs. */
  Emulated: 'emulated',
  /** No delay: `nack(delayMs)` redelivers as soon as the broker does, publish-with-delay is refused. */
  None: 'none',
} as const;

/** Union of {@link DelaySupport} values. */
export type DelaySupport = (typeof DelaySupport)[keyof typeof DelaySupport];

/** Where an adapter's delivery count comes from. */
export const AttemptSource = {
  /** The broker counts deliveries itself (JetStream, SQS, Service Bus, RabbitMQ quorum queues, memory). */
  Broker: 'broker',
  /** The adapter carries the count in the `omniqueue-attempt` header. */
  Header: 'header',
} as const;

/** Union of {@link AttemptSource} values. */
export type AttemptSource = (typeof AttemptSource)[keyof typeof AttemptSource];

/**
 * What an adapter can do, declared honestly. The conformance suite reads these flags: a scenario
 * that needs a feature the adapter lacks is reported as not applicable, never skipped by hand.
 */
export interface AdapterFeatures {
  /** Several consumers of one group share the work (each message to one of them). */
  readonly consumerGroups: boolean;
  /** Messages survive a broker restart. */
  readonly persistent: boolean;
  /** A group that exists keeps receiving messages while none of its consumers is connected. */
  readonly retainsWhileOffline: boolean;
  /** Messages with the same key reach a group's consumer in publish order. */
  readonly orderingPerKey: boolean;
  /** How `nack(delayMs)` is done (and `publish(..., { delayMs })`, unless {@link AdapterFeatures.delayedPublish} says otherwise). */
  readonly delay: DelaySupport;
  /** `publish(..., { delayMs })` works. Default: true unless `delay` is `none`. */
  readonly delayedPublish?: boolean;
  /** Where `attempt` comes from. */
  readonly attempts: AttemptSource;
  /** The adapter settles dead letters natively (it implements {@link Delivery.deadLetter}). */
  readonly nativeDeadLetter: boolean;
  /** The broker never delivers a settled message twice to the same group. */
  readonly exactlyOnce: boolean;
  /** An unsettled delivery of a consumer that vanished is redelivered to another consumer. */
  readonly redeliversUnsettled: boolean;
  /** Largest payload in bytes the broker accepts, if it has a limit. */
  readonly maxPayloadBytes?: number;
  /** Most headers the broker carries, if it has a limit. */
  readonly maxHeaders?: number;
}

/** One message on its way to the broker, fully prepared by the runtime. */
export interface WireMessage {
  /** The message id; adapters with a native message id / dedupe id use it there too. */
  readonly id: string;
  /** Destination topic (validated). */
  readonly topic: string;
  /** Ordering / partition key. */
  readonly key: string | undefined;
  /** Every header to send natively, including OmniQueue's own `omniqueue-*` and `content-type`. */
  readonly headers: Readonly<Record<string, string>>;
  /** The encoded body (JSON bytes for JSON bodies). Computed once, on first read. */
  readonly payload: Uint8Array;
  /**
   * The body as JSON text, when the body is JSON (undefined for byte bodies). Adapters whose broker
   * carries text (SQS, Redis, in-process) send this and skip the UTF-8 round trip.
   */
  readonly payloadText?: string;
  /**
   * The body value as the producer gave it. Only in-process adapters may pass it through instead of
   * the payload, and only when they promise not to let the consumer mutate the producer's object.
   */
  readonly body: unknown;
  /** Publish time, epoch milliseconds. */
  readonly publishedAt: number;
  /** Deliver no sooner than this many milliseconds after publish (0 = now). */
  readonly delayMs: number;
}

/** A topic (and optionally a group) to create if missing. Idempotent. */
export interface EnsureRequest {
  /** Topic to create. */
  readonly topic: string;
  /** Group to create on the topic, bound so that it receives every later message. */
  readonly group?: string;
  /** Broker-specific creation options (partitions, durability, retention …), passed through. */
  readonly createOptions?: Readonly<Record<string, unknown>>;
  /** Retry policy of the group, for adapters that derive broker settings from it (max deliver, ack wait). */
  readonly retry?: Readonly<{ maxAttempts: number; maxDelayMs: number }>;
}

/** What the runtime asks for when it starts consuming a group. */
export interface ConsumeRequest extends EnsureRequest {
  /** The group to consume as (always present). */
  readonly group: string;
  /** Create the topic and group first when missing. */
  readonly ensure: boolean;
  /** Most unsettled deliveries this consumer may hold at once (the runtime's concurrency). */
  readonly prefetch: number;
  /** Per-key ordering was asked for: deliver same-key messages to this consumer in order. */
  readonly ordered: boolean;
}

/** The record a dead-lettered message carries. */
export interface DeadLetterRecord {
  /** Why it was dead-lettered (`max-attempts-exceeded`, `schema-validation-failed`, the handler's reason …). */
  readonly reason: string;
  /** The last error's message, if there was one. */
  readonly error: string | undefined;
  /** Attempts made. */
  readonly attempts: number;
  /** Headers for the dead-letter message: the original headers plus `omniqueue-dlq-*` error headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The dead-letter topic the runtime would use. */
  readonly topic: string;
}

/** One received message as an adapter hands it to the runtime, before decoding. */
export interface Delivery {
  /** The payload as the broker gave it: bytes, or text where the broker only carries text (SQS). */
  readonly payload: Uint8Array | string;
  /** The already-decoded body, for in-process adapters that pass the value through. */
  readonly decoded?: { readonly value: unknown };
  /** Native headers as strings. */
  readonly headers: Readonly<Record<string, string>>;
  /** Native key. */
  readonly key: string | undefined;
  /** 1 on first delivery. */
  readonly attempt: number;
  /** The broker's own id for the message, used when no `omniqueue-id` header is present. */
  readonly nativeId: string | undefined;
  /** The broker's timestamp (epoch ms), used when no `omniqueue-published-at` header is present. */
  readonly timestamp: number | undefined;
  /** The native message. */
  readonly raw: unknown;
  /** Remove the message for this group. */
  ack(): Promise<void>;
  /** Make the message available again no sooner than `delayMs`, with attempt + 1. */
  nack(delayMs: number): Promise<void>;
  /** Native dead-lettering, when {@link AdapterFeatures.nativeDeadLetter} is true. */
  deadLetter?(record: DeadLetterRecord): Promise<void>;
}

/** A running consumer of one group, created by {@link Adapter.consume}. */
export interface Consumption {
  /** Stop fetching new messages. Deliveries already handed out stay settleable. */
  stop(): Promise<void>;
  /** Release the consumer; unsettled deliveries go back to the broker for redelivery. */
  close(): Promise<void>;
}

/** The callback through which an adapter hands a delivery to the runtime. */
export type DeliveryListener = (delivery: Delivery) => void;

/** What `ensure` (or, for `delete`, `prune`) would do to one broker resource (`omniqueue provision` prints these as its plan). */
export interface TopologyChange {
  /**
   * `create`: missing; `update`: exists with other settings; `unchanged`: exists as wanted;
   * `delete`: exists, the topology does not declare it, and `omniqueue provision --prune` removes it.
   */
  readonly action: 'create' | 'update' | 'unchanged' | 'delete';
  /** The broker resource, e.g. `exchange orders`, `queue orders.billing`, `stream orders`. */
  readonly resource: string;
  /** What differs, for `update`. */
  readonly detail?: string;
}

/**
 * One group that exists on the broker, on a topic the topology declares, but that the topology does
 * not declare for that topic: what {@link Adapter.planPrune} found and {@link Adapter.prune} deletes.
 */
export interface GroupPrune {
  /** The declared topic the group reads. */
  readonly topic: string;
  /** The group as the broker names it (Kafka group id, NATS durable name, Pulsar subscription, Artemis queue …). */
  readonly group: string;
  /** Every resource deleted with the group (the group itself first, then e.g. its retry topic), each with action `delete`. */
  readonly changes: readonly TopologyChange[];
  /**
   * Why the group cannot be deleted now (consumers are connected, it also reads topics outside the
   * topology …). `omniqueue provision --prune` then changes nothing at all and says so.
   */
  readonly blockedBy?: string;
}

/** A broker adapter. See the module documentation for the rules. */
export interface Adapter {
  /** Registry name (`memory`, `rabbitmq`, `kafka` …). */
  readonly name: string;
  /** What this adapter can do. */
  readonly features: AdapterFeatures;
  /** Open connections. Called once by `Broker.init()`. */
  connect(): Promise<void>;
  /** Create a topic and optionally a group, if missing. Idempotent. */
  ensure(request: EnsureRequest): Promise<void>;
  /** Optional: what {@link Adapter.ensure} would change for `request`, changing nothing. */
  plan?(request: EnsureRequest): Promise<readonly TopologyChange[]>;
  /**
   * Optional, with {@link Adapter.prune}: the groups of `topic` that exist on the broker and are not
   * in `keepGroups` (OmniQueue group names, mapped to broker names the way `ensure` maps them).
   * Changes nothing. The rules:
   * - only groups of `topic` are reported: never another topic, never the topic itself; resources
   *   that exist only for the group (a Kafka or Pulsar retry topic) are listed in its changes;
   * - the group's dead-letter topic is not its own resource and is never listed (it may hold dead
   *   letters, and the topology does not name it once the group is gone);
   * - transient consumers (ephemeral JetStream consumers, non-durable Pulsar subscriptions,
   *   temporary Artemis queues) are not groups and are never listed;
   * - a missing topic has nothing to prune (empty result).
   *
   * Adapters that cannot list the groups of a topic (RabbitMQ over AMQP 0-9-1 cannot list queues or
   * bindings without the management API) leave both methods out; `omniqueue provision --prune` then
   * refuses to run for them.
   */
  planPrune?(topic: string, keepGroups: readonly string[]): Promise<readonly GroupPrune[]>;
  /**
   * Optional, with {@link Adapter.planPrune}: deletes exactly what `target` lists (a result of
   * `planPrune`), nothing else. Idempotent: a resource already gone counts as deleted. A group that
   * has connected consumers is never deleted: the call rejects with `GroupInUseError`.
   */
  prune?(target: GroupPrune): Promise<void>;
  /** Send one message; resolves when the broker accepted it. */
  send(message: WireMessage): Promise<void>;
  /** Start a consumer of `request.group` on `request.topic`. */
  consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption>;
  /** Flush publishes under way, then close connections. Idempotent. */
  close(): Promise<void>;
}
