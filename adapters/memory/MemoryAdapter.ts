import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, Delivery, DeliveryListener, EnsureRequest, GroupPrune, TopologyChange, WireMessage } from '../../runtime/contract.js';
import { ClosedError, GroupInUseError } from '../../runtime/errors.js';

/** Settings of the embedded broker. */
export interface MemoryAdapterOptions {
  /**
   * Topics live in a named in-process world: brokers created with the same namespace share topics
   * and groups. Default: a private world per adapter.
   */
  readonly namespace?: string;
  /**
   * Hand the producer's body object to consumers instead of a decoded copy. Faster; only safe when
   * neither side mutates bodies after publishing. Default false.
   */
  readonly passThrough?: boolean;
}

/** What the embedded broker can do. Nothing outlives the process. */
export const MEMORY_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: false,
  retainsWhileOffline: true,
  orderingPerKey: true,
  delay: 'native',
  attempts: 'broker',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
});

interface Envelope {
  readonly message: WireMessage;
  attempt: number;
}

const worlds = new Map<string, World>();

class World {
  readonly topics = new Map<string, Topic>();
  readonly timers = new Set<NodeJS.Timeout>();
  /** Adapters open on this world; timers are cleared when the last one closes. */
  users = 0;

  topic(name: string): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = new Topic();
      this.topics.set(name, topic);
    }
    return topic;
  }

  later(delayMs: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, delayMs);
    this.timers.add(timer);
  }
}

class Topic {
  readonly groups = new Map<string, Group>();

  group(name: string, world: World): Group {
    let group = this.groups.get(name);
    if (!group) {
      group = new Group(world);
      this.groups.set(name, group);
    }
    return group;
  }
}

class Group {
  #ready: Envelope[] = [];
  #head = 0;
  #next = 0;
  #dispatching = false;
  readonly consumers: Consumer[] = [];

  constructor(readonly world: World) {}

  get depth(): number {
    return this.#ready.length - this.#head;
  }

  enqueue(envelope: Envelope): void {
    this.#ready.push(envelope);
    this.dispatch();
  }

  requeueFront(envelopes: Envelope[]): void {
    this.#compact(true);
    this.#ready.unshift(...envelopes);
    this.dispatch();
  }

  dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      while (this.#head < this.#ready.length) {
        const consumer = this.#pickConsumer();
        if (!consumer) break;
        const envelope = this.#ready[this.#head]!;
        this.#ready[this.#head++] = undefined as unknown as Envelope;
        consumer.hand(envelope);
      }
      this.#compact(false);
    } finally {
      this.#dispatching = false;
    }
  }

  #pickConsumer(): Consumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.consumers[(this.#next + i) % count]!;
      if (consumer.hasCredit) {
        this.#next = (this.#next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  #compact(force: boolean): void {
    if (this.#head === 0) return;
    if (this.#head === this.#ready.length) {
      this.#ready = [];
      this.#head = 0;
    } else if (force || (this.#head > 4096 && this.#head * 2 > this.#ready.length)) {
      this.#ready = this.#ready.slice(this.#head);
      this.#head = 0;
    }
  }
}

class Consumer implements Consumption {
  readonly #unsettled = new Set<MemoryDelivery>();
  #stopped = false;

  constructor(
    readonly group: Group,
    private readonly prefetch: number,
    private readonly listener: DeliveryListener,
    readonly passThrough: boolean,
  ) {}

  get hasCredit(): boolean {
    return !this.#stopped && this.#unsettled.size < this.prefetch;
  }

  hand(envelope: Envelope): void {
    const delivery = new MemoryDelivery(envelope, this);
    this.#unsettled.add(delivery);
    this.listener(delivery);
  }

  settled(delivery: MemoryDelivery): boolean {
    if (!this.#unsettled.delete(delivery)) return false;
    if (!this.#stopped) this.group.dispatch();
    return true;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const index = this.group.consumers.indexOf(this);
    if (index >= 0) this.group.consumers.splice(index, 1);
  }

  async close(): Promise<void> {
    await this.stop();
    const returned = [...this.#unsettled].map((delivery) => {
      delivery.envelope.attempt++;
      return delivery.envelope;
    });
    this.#unsettled.clear();
    if (returned.length > 0) this.group.requeueFront(returned);
  }
}

class MemoryDelivery implements Delivery {
  readonly attempt: number;
  readonly decoded: { readonly value: unknown } | undefined;

  constructor(
    readonly envelope: Envelope,
    private readonly consumer: Consumer,
  ) {
    this.attempt = envelope.attempt;
    this.decoded = consumer.passThrough ? { value: envelope.message.body } : undefined;
  }

  get payload(): Uint8Array | string {
    return this.envelope.message.payloadText ?? this.envelope.message.payload;
  }

  get headers(): Readonly<Record<string, string>> {
    return this.envelope.message.headers;
  }

  get key(): string | undefined {
    return this.envelope.message.key;
  }

  get nativeId(): string {
    return this.envelope.message.id;
  }

  get timestamp(): number {
    return this.envelope.message.publishedAt;
  }

  get raw(): WireMessage {
    return this.envelope.message;
  }

  async ack(): Promise<void> {
    this.consumer.settled(this);
  }

  async nack(delayMs: number): Promise<void> {
    if (!this.consumer.settled(this)) return;
    const redelivery: Envelope = { message: this.envelope.message, attempt: this.envelope.attempt + 1 };
    const group = this.consumer.group;
    if (delayMs <= 0) group.enqueue(redelivery);
    else group.world.later(delayMs, () => group.enqueue(redelivery));
  }
}

/**
 * The embedded broker: in-process topics with full semantics — groups, fanout across groups,
 * competing consumers inside a group (round-robin with credit), ack/nack, redelivery with attempt
 * count, delays, per-key order, and redelivery of whatever a closed consumer left unsettled.
 * Not persistent: everything lives in this process.
 */
export class MemoryAdapter implements Adapter {
  readonly name = 'memory';
  readonly features = MEMORY_FEATURES;
  readonly #world: World;
  readonly #passThrough: boolean;
  readonly #consumers = new Set<Consumer>();
  #closed = false;

  constructor(options: MemoryAdapterOptions = {}) {
    this.#passThrough = options.passThrough ?? false;
    if (options.namespace === undefined) {
      this.#world = new World();
    } else {
      let world = worlds.get(options.namespace);
      if (!world) {
        world = new World();
        worlds.set(options.namespace, world);
      }
      this.#world = world;
    }
    this.#world.users++;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The memory adapter');
  }

  async ensure(request: EnsureRequest): Promise<void> {
    const topic = this.#world.topic(request.topic);
    if (request.group !== undefined) topic.group(request.group, this.#world);
  }

  /** What {@link MemoryAdapter.ensure} would create in this adapter's world. */
  async plan(request: EnsureRequest): Promise<TopologyChange[]> {
    const topic = this.#world.topics.get(request.topic);
    const changes: TopologyChange[] = [{ action: topic ? 'unchanged' : 'create', resource: `topic ${request.topic}` }];
    if (request.group !== undefined) changes.push({ action: topic?.groups.has(request.group) ? 'unchanged' : 'create', resource: `group ${request.topic}/${request.group}` });
    return changes;
  }

  /** The groups of `topic` in this adapter's world that are not in `keepGroups`; one with consumers is blocked. */
  async planPrune(topic: string, keepGroups: readonly string[]): Promise<GroupPrune[]> {
    const groups = this.#world.topics.get(topic)?.groups ?? new Map<string, Group>();
    return [...groups]
      .filter(([name]) => !keepGroups.includes(name))
      .map(([name, group]) => ({
        topic,
        group: name,
        changes: [{ action: 'delete' as const, resource: `group ${topic}/${name}`, ...(group.depth > 0 ? { detail: `${group.depth} messages waiting` } : {}) }],
        ...(group.consumers.length > 0 ? { blockedBy: `${group.consumers.length} consumer(s) connected` } : {}),
      }));
  }

  /** Deletes the group `target` names, with the messages it holds; rejects with `GroupInUseError` while it has consumers. */
  async prune(target: GroupPrune): Promise<void> {
    const groups = this.#world.topics.get(target.topic)?.groups;
    const group = groups?.get(target.group);
    if (!group) return;
    if (group.consumers.length > 0) throw new GroupInUseError(`Group '${target.group}' of topic '${target.topic}' has ${group.consumers.length} consumer(s) connected.`);
    groups!.delete(target.group);
  }

  async send(message: WireMessage): Promise<void> {
    if (this.#closed) throw new ClosedError('The memory adapter');
    const topic = this.#world.topic(message.topic);
    if (message.delayMs > 0) {
      const groups = [...topic.groups.values()];
      this.#world.later(message.delayMs, () => {
        for (const group of groups) group.enqueue({ message, attempt: 1 });
      });
      return;
    }
    for (const group of topic.groups.values()) group.enqueue({ message, attempt: 1 });
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closed) throw new ClosedError('The memory adapter');
    const group = this.#world.topic(request.topic).group(request.group, this.#world);
    const consumer = new Consumer(group, request.prefetch, onDelivery, this.#passThrough);
    group.consumers.push(consumer);
    this.#consumers.add(consumer);
    group.dispatch();
    return consumer;
  }

  /** Messages waiting in a group (not counting those handed out): for tests and the example summary. */
  depth(topic: string, group: string): number {
    return this.#world.topics.get(topic)?.groups.get(group)?.depth ?? 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#consumers].map((consumer) => consumer.close()));
    if (--this.#world.users === 0) {
      for (const timer of this.#world.timers) clearTimeout(timer);
      this.#world.timers.clear();
    }
  }
}
