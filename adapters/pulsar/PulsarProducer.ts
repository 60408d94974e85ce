import type WebSocket from 'ws';
import { ConnectionError, PublishError } from '../../runtime/errors.js';
import { openWebSocket, reconnectDelay } from './openWebSocket.js';

/** One message as Pulsar's WebSocket producer endpoint takes it (without the correlation `context`). */
export interface ProducerFrame {
  /** Base64 of the payload bytes. */
  readonly payload: string;
  /** Native message properties. */
  readonly properties: Readonly<Record<string, string>>;
  /** Pulsar message key. */
  readonly key?: string;
  /** Deliver no sooner than this many milliseconds from now (Shared / Key_Shared subscriptions). */
  readonly deliverAfterMs?: number;
}

interface PendingSend {
  readonly text: string;
  readonly queuedAt: number;
  readonly resolve: (messageId: string) => void;
  readonly reject: (error: Error) => void;
}

interface ProducerAck {
  readonly result?: string;
  readonly errorMsg?: string;
  readonly messageId?: string;
  readonly context?: string;
}

/** Settings of one {@link PulsarProducer}. */
export interface PulsarProducerSettings {
  /** Full `ws://…/ws/v2/producer/persistent/…` URL. */
  readonly url: string;
  /** How long a publish may wait for a (re)connection before it rejects with `ConnectionError`. */
  readonly sendTimeoutMs: number;
  /** Longest pause between reconnect attempts. */
  readonly maxReconnectDelayMs: number;
}

/**
 * A producer of one topic over Pulsar's WebSocket API. Each send carries a `context` that the
 * producer ack echoes, so a publish resolves only on the broker's ack (with the message id) and
 * rejects on its error. When the socket drops, sends that were not acked yet are sent again on the
 * new socket (at-least-once: the broker may already have stored them); sends made while
 * disconnected wait for the connection, up to `sendTimeoutMs`, and then reject with a
 * `ConnectionError`. Nothing vanishes.
 */
export class PulsarProducer {
  readonly #settings: PulsarProducerSettings;
  readonly #pending = new Map<string, PendingSend>();
  #socket: WebSocket | undefined;
  #connecting = false;
  #failures = 0;
  #lastError = '';
  #seq = 0;
  #closed = false;
  #sweeper: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #drained: (() => void) | undefined;

  constructor(settings: PulsarProducerSettings) {
    this.#settings = settings;
  }

  /** Sends one message; resolves with Pulsar's message id (base64) once the broker acked it. */
  send(frame: ProducerFrame): Promise<string> {
    if (this.#closed) return Promise.reject(new ConnectionError('The Pulsar producer is closed.'));
    const context = String(++this.#seq);
    const text = JSON.stringify({ ...frame, context });
    return new Promise<string>((resolve, reject) => {
      this.#pending.set(context, { text, queuedAt: Date.now(), resolve, reject });
      const socket = this.#socket;
      if (socket && socket.readyState === socket.OPEN) socket.send(text);
      else this.#connect();
    });
  }

  /** Waits until every send under way has resolved or rejected, then closes the socket. */
  async close(): Promise<void> {
    if (this.#pending.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#closed = true;
    clearTimeout(this.#retry);
    clearInterval(this.#sweeper);
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && socket.readyState === socket.OPEN) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close(1000);
        setTimeout(resolve, 2_000).unref();
      });
    } else socket?.terminate();
  }

  #connect(): void {
    if (this.#connecting || this.#closed || this.#retry) return;
    this.#connecting = true;
    this.#startSweeper();
    openWebSocket(this.#settings.url, this.#settings.sendTimeoutMs).then(
      (socket) => {
        this.#connecting = false;
        this.#failures = 0;
        if (this.#closed) {
          socket.terminate();
          return;
        }
        this.#attach(socket);
        for (const entry of this.#pending.values()) socket.send(entry.text);
      },
      (error: Error) => {
        this.#connecting = false;
        this.#lastError = error.message;
        this.#scheduleReconnect();
      },
    );
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#pending.size === 0) return;
    const delay = reconnectDelay(this.#failures++, this.#settings.maxReconnectDelayMs);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect();
    }, delay);
  }

  #attach(socket: WebSocket): void {
    this.#socket = socket;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    socket.on('message', (data) => this.#onAck(data.toString()));
    socket.on('error', (error) => (this.#lastError = error.message));
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#lastError ||= 'socket closed';
      if (this.#pending.size > 0) {
        this.#startSweeper();
        this.#scheduleReconnect();
      }
    });
  }

  #onAck(text: string): void {
    let ack: ProducerAck;
    try {
      ack = JSON.parse(text) as ProducerAck;
    } catch {
      return;
    }
    const entry = ack.context === undefined ? undefined : this.#pending.get(ack.context);
    if (!entry) return;
    this.#pending.delete(ack.context!);
    if (ack.result === 'ok' && ack.messageId !== undefined) entry.resolve(ack.messageId);
    else entry.reject(new PublishError(`Pulsar refused the publish: ${ack.result ?? 'no result'}${ack.errorMsg ? ` (${ack.errorMsg})` : ''}`));
    this.#checkDrained();
  }

  /** While disconnected: rejects sends that waited longer than `sendTimeoutMs`. */
  #startSweeper(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => {
      const limit = Date.now() - this.#settings.sendTimeoutMs;
      for (const [context, entry] of this.#pending) {
        if (entry.queuedAt > limit) continue;
        this.#pending.delete(context);
        entry.reject(new ConnectionError(`Pulsar publish not acknowledged within ${this.#settings.sendTimeoutMs} ms: no connection to the broker (${this.#lastError || 'connecting'}).`));
      }
      this.#checkDrained();
      if (this.#pending.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, Math.min(1_000, this.#settings.sendTimeoutMs));
    this.#sweeper.unref();
  }

  #checkDrained(): void {
    if (this.#pending.size === 0 && this.#drained) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}
