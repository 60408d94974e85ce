import type WebSocket from 'ws';
import type { Consumption, Delivery, DeliveryListener } from '../../runtime/contract.js';
import { ConnectionError } from '../../runtime/errors.js';
import { WireHeader } from '../../runtime/wire.js';
import { openWebSocket, reconnectDelay } from './openWebSocket.js';

/** A message as Pulsar's WebSocket consumer endpoint pushes it. */
export interface PulsarConsumerMessage {
  /** Base64 of Pulsar's serialised message id; acks and negative acks quote it. */
  readonly messageId: string;
  /** Base64 of the payload bytes. */
  readonly payload: string;
  /** Native message properties. */
  readonly properties?: Record<string, string>;
  /** Broker publish time, ISO 8601. */
  readonly publishTime?: string;
  /** How often the broker delivered this message before (negative acks, closed consumers). */
  readonly redeliveryCount?: number;
  /** Pulsar message key. */
  readonly key?: string;
}

/** Settings of one {@link PulsarConsumption}. */
export interface PulsarConsumptionSettings {
  /** Full `ws://…/ws/v3/consumer/<subscription>?topics=…` URL, without the pull-mode parameters. */
  readonly url: string;
  /** Most unsettled deliveries at once. */
  readonly prefetch: number;
  /** The consumer's native negative-ack redelivery delay: a `nack(delayMs)` up to this is a native negative ack. */
  readonly nackDelayMs: number;
  /** How long opening the socket may take. */
  readonly connectTimeoutMs: number;
  /** Longest pause between reconnect attempts. */
  readonly maxReconnectDelayMs: number;
  /**
   * Re-publishes a message to the group's retry topic, to be delivered after `delayMs`, with
   * `omniqueue-attempt` set to `attempt`: how a nack longer than the native delay is done.
   */
  readonly republish: (message: PulsarConsumerMessage, headers: Record<string, string>, delayMs: number) => Promise<void>;
  /** Called once when the consumption was closed. */
  readonly onClosed?: () => void;
  /** Called with connection problems that the consumption recovers from by itself. */
  readonly onError?: (error: Error) => void;
}

/**
 * A consumer of one subscription over Pulsar's WebSocket API in pull mode: the adapter hands the
 * proxy exactly as many permits as it may hold deliveries (`prefetch` minus what is unsettled), so
 * no more than `prefetch` deliveries are ever outstanding, and `stop()` simply stops granting.
 * It reads the group's topic and its retry topic through one multi-topic consumer (`/ws/v3`).
 * When the socket drops (broker restart) it reconnects with backoff and carries on; the broker
 * redelivers whatever the lost socket held, so deliveries of the old socket settle as no-ops.
 */
export class PulsarConsumption implements Consumption {
  readonly #settings: PulsarConsumptionSettings;
  readonly #listener: DeliveryListener;
  #socket: WebSocket | undefined;
  #generation = 0;
  #unsettled = 0;
  #permits = 0;
  #failures = 0;
  #stopped = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  /** Handed-out, unsettled deliveries of the current socket. */
  readonly #live = new Set<PulsarDelivery>();

  constructor(settings: PulsarConsumptionSettings, listener: DeliveryListener) {
    this.#settings = settings;
    this.#listener = listener;
  }

  /** Opens the first socket; rejects with `ConnectionError` when Pulsar refuses the consumer. */
  async start(): Promise<void> {
    try {
      this.#attach(await openWebSocket(this.#url(), this.#settings.connectTimeoutMs));
    } catch (error) {
      throw new ConnectionError(`Pulsar refused the consumer (${this.#settings.url.split('?')[0]}): ${(error as Error).message}`, { cause: error });
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopped = true;
    this.#closed = true;
    this.#settings.onClosed?.();
    clearTimeout(this.#retry);
    const socket = this.#socket;
    if (socket && socket.readyState === socket.OPEN && this.#live.size > 0) {
      // Hand unsettled deliveries back with a native negative ack, so that the broker counts the
      // redelivery (it does not when a consumer merely disconnects), and give the proxy's
      // negative-ack tracker time to pass them on before the consumer goes away.
      await Promise.all([...this.#live].map((delivery) => delivery.release()));
      await new Promise((resolve) => setTimeout(resolve, this.#settings.nackDelayMs + 250));
    }
    this.#socket = undefined;
    this.#generation++;
    this.#live.clear();
    if (socket && socket.readyState === socket.OPEN) {
      // Closing the socket closes the proxy's consumer: the broker redelivers what it held.
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close(1000);
        setTimeout(resolve, 2_000).unref();
      });
    } else socket?.terminate();
  }

  #url(): string {
    return `${this.#settings.url}&pullMode=true`;
  }

  #attach(socket: WebSocket): void {
    this.#socket = socket;
    this.#permits = 0;
    const generation = ++this.#generation;
    socket.on('message', (data) => this.#onMessage(data.toString(), generation));
    socket.on('error', (error) => this.#settings.onError?.(error));
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#generation++;
      this.#permits = 0;
      this.#live.clear();
      this.#reconnect();
    });
    this.#grant();
  }

  #reconnect(): void {
    if (this.#closed) return;
    const delay = reconnectDelay(this.#failures++, this.#settings.maxReconnectDelayMs);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#closed) return;
      openWebSocket(this.#url(), this.#settings.connectTimeoutMs).then(
        (socket) => {
          if (this.#closed) {
            socket.terminate();
            return;
          }
          this.#failures = 0;
          this.#attach(socket);
        },
        (error: Error) => {
          this.#settings.onError?.(error);
          this.#reconnect();
        },
      );
    }, delay);
  }

  /** Tops the proxy's permits up so that unsettled + permits = prefetch. */
  #grant(): void {
    const socket = this.#socket;
    if (this.#stopped || !socket || socket.readyState !== socket.OPEN) return;
    const room = this.#settings.prefetch - this.#unsettled - this.#permits;
    if (room <= 0) return;
    if (this.#permits > 0 && room < Math.ceil(this.#settings.prefetch / 4)) return;
    this.#permits += room;
    socket.send(JSON.stringify({ type: 'permit', permitMessages: room }));
  }

  #onMessage(text: string, generation: number): void {
    if (generation !== this.#generation) return;
    let message: PulsarConsumerMessage;
    try {
      message = JSON.parse(text) as PulsarConsumerMessage;
    } catch {
      return;
    }
    if (typeof message.messageId !== 'string' || typeof message.payload !== 'string') return;
    this.#permits = Math.max(0, this.#permits - 1);
    // After stop(): not handed out. It stays unacknowledged and goes back to the group on close.
    if (this.#stopped) return;
    this.#unsettled++;
    const delivery = new PulsarDelivery(message, generation, this);
    this.#live.add(delivery);
    this.#listener(delivery);
  }

  /** Sends an ack or negative ack on the socket the delivery came from; a no-op when that socket is gone. */
  send(generation: number, command: Record<string, unknown>): Promise<void> {
    const socket = this.#socket;
    if (generation !== this.#generation || !socket || socket.readyState !== socket.OPEN) return Promise.resolve();
    return new Promise((resolve) => socket.send(JSON.stringify(command), () => resolve()));
  }

  /** Bookkeeping after a delivery was settled: frees its slot and grants a permit. */
  settled(delivery: PulsarDelivery): void {
    this.#live.delete(delivery);
    this.#unsettled--;
    this.#grant();
  }

  /** See {@link PulsarConsumptionSettings}. */
  get settings(): PulsarConsumptionSettings {
    return this.#settings;
  }
}

/** One Pulsar message handed to the runtime. */
class PulsarDelivery implements Delivery {
  readonly payload: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string;
  readonly timestamp: number | undefined;
  readonly raw: PulsarConsumerMessage;
  readonly #generation: number;
  readonly #consumption: PulsarConsumption;
  #settled = false;

  constructor(message: PulsarConsumerMessage, generation: number, consumption: PulsarConsumption) {
    this.raw = message;
    this.payload = Buffer.from(message.payload, 'base64');
    this.headers = message.properties ?? {};
    this.key = message.key;
    // Broker count of redeliveries, on top of the attempt a delayed retry carried in its header.
    const carried = Number(this.headers[WireHeader.Attempt]);
    this.attempt = (Number.isInteger(carried) && carried > 0 ? carried : 1) + (message.redeliveryCount ?? 0);
    this.nativeId = message.messageId;
    const published = message.publishTime === undefined ? Number.NaN : Date.parse(message.publishTime);
    this.timestamp = Number.isNaN(published) ? undefined : published;
    this.#generation = generation;
    this.#consumption = consumption;
  }

  async ack(): Promise<void> {
    if (!this.#settle()) return;
    await this.#consumption.send(this.#generation, { messageId: this.nativeId });
  }

  async nack(delayMs: number): Promise<void> {
    if (!this.#settle()) return;
    const { nackDelayMs, republish } = this.#consumption.settings;
    if (delayMs > nackDelayMs) {
      try {
        await republish(this.raw, { ...this.headers, [WireHeader.Attempt]: String(this.attempt + 1) }, delayMs);
        await this.#consumption.send(this.#generation, { messageId: this.nativeId });
        return;
      } catch {
        // The retry could not be stored: fall back to the native negative ack (redelivered after
        // the consumer's negative-ack delay, sooner than asked, but not lost).
      }
    }
    await this.#consumption.send(this.#generation, { type: 'negativeAcknowledge', messageId: this.nativeId });
  }

  /** Gives the delivery back to the broker with a negative ack (close with the delivery still open). */
  async release(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    await this.#consumption.send(this.#generation, { type: 'negativeAcknowledge', messageId: this.nativeId });
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#consumption.settled(this);
    return true;
  }
}
