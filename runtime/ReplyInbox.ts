import { ClosedError, TimeoutError } from './errors.js';
import type { Message } from './message.js';
import { newMessageId } from './newMessageId.js';
import type { Subscription } from './Subscription.js';
import { WireHeader } from './wire.js';

interface Pending {
  resolve(message: Message<never>): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/** The part of the broker an inbox needs: subscribing to its own reply topic. */
interface Subscriber {
  subscribe(topic: string, handler: (message: Message) => void, groupId: string, options: { ensure: boolean; concurrency: number }): Promise<Subscription>;
}

/**
 * The reply side of request–reply: one reply topic per broker instance, subscribed on first use;
 * replies are matched to requests by `omniqueue-correlation-id`. A reply nobody waits for any more
 * (timed out) is acknowledged and dropped.
 */
export class ReplyInbox {
  readonly #pending = new Map<string, Pending>();
  readonly #topic = `omniqueue.replies.${newMessageId()}`;
  #subscribed: Promise<string> | undefined;

  constructor(private readonly broker: Subscriber) {}

  /** The reply topic, subscribed before the first request goes out. */
  topic(): Promise<string> {
    this.#subscribed ??= this.broker
      .subscribe(this.#topic, (message) => this.#receive(message), 'replies', { ensure: true, concurrency: 64 })
      .then(() => this.#topic);
    return this.#subscribed;
  }

  /** Waits for the reply to `correlationId`. */
  expect<T>(correlationId: string, timeoutMs: number): Promise<Message<T>> {
    return new Promise<Message<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(correlationId);
        reject(new TimeoutError(`No reply to request ${correlationId} within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.#pending.set(correlationId, { resolve: resolve as (message: Message<never>) => void, reject, timer });
    });
  }

  /** Fails a request whose publish failed. */
  cancel(correlationId: string, error: unknown): void {
    const pending = this.#pending.get(correlationId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#pending.delete(correlationId);
    pending.reject(error);
  }

  /** Fails every waiting request: the broker is closing. */
  closeAll(): void {
    for (const correlationId of [...this.#pending.keys()]) this.cancel(correlationId, new ClosedError('The broker'));
  }

  #receive(message: Message): void {
    const correlationId = message.headers[WireHeader.CorrelationId];
    if (correlationId === undefined) return;
    const pending = this.#pending.get(correlationId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#pending.delete(correlationId);
    pending.resolve(message as Message<never>);
  }
}
