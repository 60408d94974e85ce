import { randomUUID } from 'node:crypto';
import type { Adapter, AdapterFeatures, ConsumeRequest, Consumption, DeliveryListener, EnsureRequest, WireMessage } from '../../runtime/contract.js';
import { ClosedError, ConfigError } from '../../runtime/errors.js';
import { WireHeader } from '../../runtime/wire.js';
import { KEY_HEADER } from './protocol.js';
import { PublisherHub, type HubEntry, type Member, type MemberSink } from './PublisherHub.js';
import { PublisherLink } from './PublisherLink.js';
import { ZeroMqDelivery } from './ZeroMqDelivery.js';

/**
 * Settings of the brokerless ZeroMQ adapter. Give exactly one of `bind` (this process is the
 * publisher: it holds the groups) or `connect` (this process is a peer of a publisher elsewhere).
 */
export interface ZeroMqAdapterOptions {
  /**
   * Endpoint the publisher's ROUTER socket binds, e.g. `tcp://127.0.0.1:5560` (`tcp://127.0.0.1:*`
   * picks a free port; read it from {@link ZeroMqAdapter.endpoint} after `init()`). Publishes and
   * consumptions of this adapter are served in process; peers connect here.
   */
  readonly bind?: string;
  /**
   * Endpoint of a publisher to connect to. Consumptions join their group on that publisher;
   * publishes are forwarded to it and resolve when it took the message.
   */
  readonly connect?: string;
  /**
   * Publisher only: most messages waiting in one group's buffer (published while the group has no
   * member, or all its members are busy). Past it, `publish` rejects with `PublishError` and no
   * group gets the message — nothing is dropped silently. Redeliveries are always taken back.
   * Default 10,000.
   */
  readonly maxBuffered?: number;
  /** Peers ping the publisher this often; the publisher checks liveness this often. Default 1,000 ms. */
  readonly heartbeatIntervalMs?: number;
  /**
   * Publisher only: a peer silent this long is gone (process killed, network cut): its unsettled
   * deliveries go to other members of their groups, with attempt + 1. Default 5,000 ms.
   */
  readonly peerTimeoutMs?: number;
  /** Peer only: how long a forwarded publish, ensure or subscribe waits for the publisher. Default 10,000 ms. */
  readonly requestTimeoutMs?: number;
}

/**
 * What the brokerless adapter can do. Nothing is persistent: every message lives in the
 * publisher's memory, so at-least-once holds only while the publisher process lives. A group
 * keeps receiving while it has no member (bounded by `maxBuffered`, see
 * {@link ZeroMqAdapterOptions.maxBuffered}); a group exists once a member announced it or
 * `ensure` declared it. Attempts travel in the `omniqueue-attempt` header the publisher
 * maintains; `nack(delay)` and delayed publishes wait on a timer in the publisher.
 */
export const ZEROMQ_FEATURES: AdapterFeatures = Object.freeze({
  consumerGroups: true,
  persistent: false,
  retainsWhileOffline: true,
  orderingPerKey: false,
  delay: 'native',
  attempts: 'header',
  nativeDeadLetter: false,
  exactlyOnce: false,
  redeliversUnsettled: true,
});

const textEncoder = new TextEncoder();

/** A consumption served in the publisher's own process. */
class LocalConsumer implements Consumption, MemberSink {
  readonly id = randomUUID();

  constructor(
    private readonly hub: PublisherHub,
    private readonly listener: DeliveryListener,
  ) {}

  deliver(member: Member, tag: string, entry: HubEntry): void {
    const headers = { ...entry.headers, [WireHeader.Attempt]: String(entry.attempt) };
    this.listener(new ZeroMqDelivery(entry.topic, headers, entry.payload, tag, (nackDelayMs) => this.hub.settle(member.id, tag, nackDelayMs)));
  }

  async stop(): Promise<void> {
    this.hub.stop(this.id);
  }

  async close(): Promise<void> {
    this.hub.leave(this.id);
  }
}

/**
 * Brokerless messaging over ZeroMQ (`zeromq` v6): the publisher binds a ROUTER socket and keeps
 * the groups; peers connect DEALER sockets and announce `(topic, group)` members. Every group gets
 * every message; inside a group each message goes to one member (round-robin with credit =
 * prefetch); acks and nacks flow back, so a message nobody acknowledged goes to another member —
 * also when its member's process vanished (after `peerTimeoutMs` without a ping). The frames are
 * documented in `protocol.ts`, so plain ZeroMQ code on either side interoperates.
 */
export class ZeroMqAdapter implements Adapter {
  readonly name = 'zeromq';
  readonly features = ZEROMQ_FEATURES;
  readonly #options: ZeroMqAdapterOptions;
  readonly #consumers = new Set<Consumption>();
  #hub: PublisherHub | undefined;
  #link: PublisherLink | undefined;
  #closed = false;

  constructor(options: ZeroMqAdapterOptions) {
    if ((options.bind === undefined) === (options.connect === undefined)) {
      throw new ConfigError("The zeromq adapter needs exactly one of 'bind' (this process publishes and holds the groups) or 'connect' (a publisher's endpoint).");
    }
    for (const [name, value] of Object.entries({ maxBuffered: options.maxBuffered, heartbeatIntervalMs: options.heartbeatIntervalMs, peerTimeoutMs: options.peerTimeoutMs, requestTimeoutMs: options.requestTimeoutMs })) {
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) throw new ConfigError(`zeromq: ${name} must be a positive integer, got ${value}.`);
    }
    this.#options = options;
  }

  /** The publisher's endpoint: the bound one (with its real port) or the one connected to. */
  get endpoint(): string | undefined {
    return this.#hub?.endpoint ?? this.#options.connect;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new ClosedError('The zeromq adapter');
    if (this.#hub || this.#link) return;
    const heartbeatIntervalMs = this.#options.heartbeatIntervalMs ?? 1_000;
    if (this.#options.bind !== undefined) {
      const hub = new PublisherHub({ maxBuffered: this.#options.maxBuffered ?? 10_000, heartbeatIntervalMs, peerTimeoutMs: this.#options.peerTimeoutMs ?? 5_000 });
      await hub.bind(this.#options.bind);
      this.#hub = hub;
    } else {
      this.#link = new PublisherLink(this.#options.connect!, { heartbeatIntervalMs, requestTimeoutMs: this.#options.requestTimeoutMs ?? 10_000 });
    }
  }

  async ensure(request: EnsureRequest): Promise<void> {
    if (this.#hub) {
      if (request.group !== undefined) this.#hub.group(request.topic, request.group);
      return;
    }
    await this.#peer().ensure(request.topic, request.group);
  }

  async send(message: WireMessage): Promise<void> {
    if (this.#closed) throw new ClosedError('The zeromq adapter');
    const headers: Record<string, string> = { ...message.headers };
    if (message.key !== undefined) headers[KEY_HEADER] = message.key;
    if (this.#hub) {
      this.#hub.publish(message.topic, headers, message.payload, message.delayMs);
      return;
    }
    await this.#peer().publish(message.topic, JSON.stringify(headers), message.payload, message.delayMs);
  }

  async consume(request: ConsumeRequest, onDelivery: DeliveryListener): Promise<Consumption> {
    if (this.#closed) throw new ClosedError('The zeromq adapter');
    let consumption: Consumption;
    if (this.#hub) {
      const local = new LocalConsumer(this.#hub, onDelivery);
      this.#hub.join(local.id, request.topic, request.group, request.prefetch, local);
      consumption = local;
    } else {
      consumption = await this.#peer().consume(request.topic, request.group, request.prefetch, onDelivery);
    }
    this.#consumers.add(consumption);
    return consumption;
  }

  /** Publisher only: messages waiting in a group's buffer (not counting those handed out). */
  depth(topic: string, group: string): number {
    return this.#hub?.depth(topic, group) ?? 0;
  }

  /** Publisher only: members currently receiving from a group (local and remote). */
  memberCount(topic: string, group: string): number {
    return this.#hub?.memberCount(topic, group) ?? 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.close()));
    await this.#link?.close();
    await this.#hub?.close();
  }

  #peer(): PublisherLink {
    if (this.#closed) throw new ClosedError('The zeromq adapter');
    if (!this.#link) throw new ClosedError('The zeromq adapter (not connected)');
    return this.#link;
  }
}

/** Encodes a headers map as the JSON headers frame (for plain-zeromq publishers). */
export function headersFrame(headers: Readonly<Record<string, string>>): Uint8Array {
  return textEncoder.encode(JSON.stringify(headers));
}
