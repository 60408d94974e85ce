import { randomUUID } from 'node:crypto';
import { Dealer } from 'zeromq';
import type { Consumption, DeliveryListener } from '../../runtime/contract.js';
import {
  ConnectionError,
  ErrorCode,
  InvalidNameError,
  OmniQueueError,
  PublishError,
} from '../../runtime/errors.js';
import { FrameWriter } from './FrameWriter.js';
import { Command, isCommand, parseHeaders, text, type Frames } from './protocol.js';
import { ZeroMqDelivery } from './ZeroMqDelivery.js';

/** Settings of a {@link PublisherLink}. */
export interface PublisherLinkOptions {
  /** How often the link pings the publisher. */
  readonly heartbeatIntervalMs: number;
  /** How long a request (publish, subscribe, ensure …) waits for the publisher's answer. */
  readonly requestTimeoutMs: number;
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The peer side of the brokerless adapter: one DEALER socket connected to a publisher's ROUTER.
 * It forwards publishes and ensures, announces members, receives their deliveries, sends their
 * acks and nacks, and pings the publisher so it knows this peer lives (and re-announces members
 * the publisher does not know, after a publisher restart).
 */
export class PublisherLink {
  readonly #dealer: Dealer;
  readonly #writer: FrameWriter;
  readonly #options: PublisherLinkOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #requests = new Set<Promise<void>>();
  readonly #consumers = new Map<string, RemoteConsumer>();
  readonly #receiving: Promise<void>;
  readonly #heartbeat: NodeJS.Timeout;
  #seq = 0;
  #closed = false;

  constructor(readonly endpoint: string, options: PublisherLinkOptions) {
    this.#options = options;
    this.#dealer = new Dealer({ routingId: `oq-${randomUUID()}`, sendHighWaterMark: 0, receiveHighWaterMark: 0, linger: 1_000 });
    this.#dealer.connect(endpoint);
    this.#writer = new FrameWriter(this.#dealer, () => {});
    this.#receiving = this.#receive();
    this.#heartbeat = setInterval(() => this.#ping(), options.heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  /** Sends a message and resolves when the publisher has handed it to every group of the topic. */
  publish(topic: string, headersJson: string, payload: Uint8Array, delayMs: number): Promise<void> {
    return this.#request((tag) => [topic, headersJson, payload, tag, String(delayMs)]);
  }

  /** Creates a topic (and group) on the publisher. */
  ensure(topic: string, group: string | undefined): Promise<void> {
    return this.#request((tag) => [Command.Ensure, tag, topic, group ?? '']);
  }

  /** Joins a group on the publisher. */
  async consume(topic: string, group: string, prefetch: number, listener: DeliveryListener): Promise<Consumption> {
    const consumer = new RemoteConsumer(this, randomUUID(), topic, group, prefetch, listener);
    this.#consumers.set(consumer.id, consumer);
    try {
      await this.announce(consumer);
    } catch (error) {
      this.#consumers.delete(consumer.id);
      throw error;
    }
    return consumer;
  }

  /** Sends a member's `$SUB`. */
  announce(consumer: RemoteConsumer): Promise<void> {
    return this.#request((tag) => [Command.Subscribe, tag, consumer.id, consumer.topic, consumer.group, String(consumer.prefetch)]);
  }

  /** Sends a control request that the publisher answers. */
  control(command: typeof Command.Stop | typeof Command.Close, consumerId: string): Promise<void> {
    return this.#request((tag) => [command, tag, consumerId]);
  }

  /** Sends frames without waiting for an answer. */
  write(frames: Frames): void {
    if (!this.#closed) this.#writer.write(frames);
  }

  /** Forgets a consumer. */
  forget(consumerId: string): void {
    this.#consumers.delete(consumerId);
  }

  /** Closes every consumer, waits for requests under way (each resolves or rejects), closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#consumers.values()].map((consumer) => consumer.close()));
    // Every request under way ends with its answer or its timeout.
    await Promise.allSettled([...this.#requests]);
    this.#closed = true;
    clearInterval(this.#heartbeat);
    await this.#writer.drained();
    this.#dealer.close();
    await this.#receiving.catch(() => {});
  }

  #request(build: (tag: string) => Frames): Promise<void> {
    if (this.#closed) return Promise.reject(new ConnectionError(`The ZeroMQ link to ${this.endpoint} is closed.`));
    const tag = (++this.#seq).toString(36);
    const request = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(tag);
        reject(new ConnectionError(`The ZeroMQ publisher at ${this.endpoint} did not answer within ${this.#options.requestTimeoutMs} ms.`));
      }, this.#options.requestTimeoutMs);
      this.#pending.set(tag, { resolve, reject, timer });
      this.#writer.write(build(tag));
    });
    this.#requests.add(request);
    const done = (): void => void this.#requests.delete(request);
    request.then(done, done);
    return request;
  }

  #answer(tag: string, error: Error | undefined): void {
    const pending = this.#pending.get(tag);
    if (!pending) return;
    this.#pending.delete(tag);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve();
  }

  #ping(): void {
    this.write([Command.Ping, ...[...this.#consumers.values()].filter((consumer) => consumer.active).map((consumer) => consumer.id)]);
  }

  async #receive(): Promise<void> {
    // receive() directly rather than the socket's async iterator: one promise per message less.
    const dealer = this.#dealer;
    while (!dealer.closed) {
      let frames: Buffer[];
      try {
        frames = await dealer.receive();
      } catch (error) {
        if (dealer.closed) return;
        throw error;
      }
      try {
        this.#handle(frames);
      } catch {
        // A malformed frame never stops the link.
      }
    }
  }

  #handle(frames: Buffer[]): void {
    if (!isCommand(frames[0])) {
      const consumer = this.#consumers.get(text(frames[3]));
      const tag = text(frames[4]);
      if (!consumer) {
        // Not ours (any more): give it back at once so another member gets it.
        this.write([Command.Nack, text(frames[3]), tag, '0']);
        return;
      }
      consumer.deliver(text(frames[0]), parseHeaders(frames[1]), frames[2] ?? new Uint8Array(0), tag);
      return;
    }
    switch (text(frames[0])) {
      case Command.Ok:
        this.#answer(text(frames[1]), undefined);
        return;
      case Command.Error:
        this.#answer(text(frames[1]), remoteError(text(frames[2]), text(frames[3])));
        return;
      case Command.Unknown: {
        const consumer = this.#consumers.get(text(frames[1]));
        if (consumer?.active) void this.announce(consumer).catch(() => {});
        return;
      }
      default:
        return;
    }
  }
}

function remoteError(code: string, message: string): OmniQueueError {
  if (code === ErrorCode.InvalidName) return new InvalidNameError(message);
  if (code === ErrorCode.Publish) return new PublishError(message);
  return new PublishError(`ZeroMQ publisher refused the request (${code}): ${message}`);
}

/** A member announced over a {@link PublisherLink}. */
class RemoteConsumer implements Consumption {
  #acks: string[] = [];
  #stopped = false;
  #closed = false;

  constructor(
    private readonly link: PublisherLink,
    readonly id: string,
    readonly topic: string,
    readonly group: string,
    readonly prefetch: number,
    private readonly listener: DeliveryListener,
  ) {}

  /** Still a member (not stopped): pinged and re-announced. */
  get active(): boolean {
    return !this.#stopped;
  }

  deliver(topic: string, headers: Record<string, string>, payload: Uint8Array, tag: string): void {
    if (this.#closed) {
      this.link.write([Command.Nack, this.id, tag, '0']);
      return;
    }
    this.listener(
      new ZeroMqDelivery(topic, headers, payload, tag, (nackDelayMs) => {
        if (this.#closed) return;
        if (nackDelayMs !== undefined) this.link.write([Command.Nack, this.id, tag, String(nackDelayMs)]);
        else this.#ack(tag);
      }),
    );
  }

  /** Acks settled in one turn of the event loop travel together: `["$ACK", consumerId, tag, tag…]`. */
  #ack(tag: string): void {
    this.#acks.push(tag);
    if (this.#acks.length === 1) setImmediate(() => this.#flushAcks());
  }

  #flushAcks(): void {
    if (this.#acks.length === 0) return;
    const tags = this.#acks;
    this.#acks = [];
    this.link.write([Command.Ack, this.id, ...tags]);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.link.control(Command.Stop, this.id).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // `$CLOSE` stops the member too: one round trip.
    this.#stopped = true;
    this.#flushAcks();
    this.#closed = true;
    this.link.forget(this.id);
    await this.link.control(Command.Close, this.id).catch(() => {});
  }
}
