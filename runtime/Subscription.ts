import type { Consumption, Delivery } from './contract.js';

/** A running subscription of one consumer to a topic, inside a group. */
export interface Subscription extends AsyncDisposable {
  /** Topic consumed. */
  readonly topic: string;
  /** Group joined. */
  readonly group: string;
  /** Messages being handled right now. */
  readonly inFlight: number;
  /** Highest number of messages handled at once so far. */
  readonly peakInFlight: number;
  /**
   * Stops taking new messages, waits up to `drainTimeoutMs` (default 30 s) for the messages in
   * flight to be handled and settled, then releases the consumer: whatever is still unsettled goes
   * back to the broker for redelivery. Idempotent.
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
}

/**
 * Runs deliveries through the pipeline with the subscription's concurrency limit, and keeps
 * same-key messages in order when ordering was asked for.
 */
export class SubscriptionRunner implements Subscription {
  #active = 0;
  #peak = 0;
  readonly #waiting: Delivery[] = [];
  readonly #keyTails = new Map<string, Promise<void>>();
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #consumption: Consumption | undefined;

  constructor(
    readonly topic: string,
    readonly group: string,
    private readonly pipeline: { process(delivery: Delivery): Promise<void> },
    private readonly concurrency: number,
    private readonly ordered: boolean,
    private readonly onClosed: (subscription: SubscriptionRunner) => void,
  ) {}

  get inFlight(): number {
    return this.#active;
  }

  get peakInFlight(): number {
    return this.#peak;
  }

  /** Binds the adapter's consumption once it is started. */
  attach(consumption: Consumption): void {
    this.#consumption = consumption;
  }

  /** The adapter's delivery listener. */
  readonly deliver = (delivery: Delivery): void => {
    if (this.#active < this.concurrency) this.#start(delivery);
    else this.#waiting.push(delivery);
  };

  #start(delivery: Delivery): void {
    this.#active++;
    if (this.#active > this.#peak) this.#peak = this.#active;
    const run = this.ordered && delivery.key !== undefined ? this.#afterSameKey(delivery, delivery.key) : this.pipeline.process(delivery);
    run.then(this.#finished, this.#finished);
  }

  #afterSameKey(delivery: Delivery, key: string): Promise<void> {
    const previous = this.#keyTails.get(key);
    const run = previous ? previous.then(() => this.pipeline.process(delivery)) : this.pipeline.process(delivery);
    this.#keyTails.set(key, run);
    return run.finally(() => {
      if (this.#keyTails.get(key) === run) this.#keyTails.delete(key);
    });
  }

  readonly #finished = (): void => {
    this.#active--;
    const next = this.#waiting.shift();
    if (next) this.#start(next);
    else if (this.#active === 0) this.#drained?.();
  };

  close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options.drainTimeoutMs ?? 30_000);
    return this.#closing;
  }

  async #close(drainTimeoutMs: number): Promise<void> {
    try {
      await this.#consumption?.stop();
      if (this.#active > 0 || this.#waiting.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (this.#drained = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs))),
        ]);
        clearTimeout(timer);
      }
      await this.#consumption?.close();
    } finally {
      this.onClosed(this);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
