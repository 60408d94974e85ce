import type { Delivery } from '../contract.js';
import type { Message, NackOptions, Verdict } from '../message.js';
import type { Outcome } from './Telemetry.js';

/** Settles a verdict given through the book-style methods; called at most once per message. */
export type EarlySettle = (verdict: Verdict, how: string) => Promise<void>;

/** What settles a book-style verdict: the consume pipeline. */
export interface EarlySettler {
  /** Settles the first book-style verdict of a handler run. */
  settleEarly(delivery: Delivery, id: string, verdict: Verdict, error: unknown, attempt: number): Promise<Outcome>;
  /** Logs a second settlement of the same message, which is ignored. */
  warnSettledTwice(id: string, first: string, second: string): void;
}

/** The verdict `{ kind: 'ack' }`, shared and frozen. */
export const ACK: Verdict = Object.freeze({ kind: 'ack' });
/** The verdict `{ kind: 'nack' }` (retry after the policy's backoff), shared and frozen. */
export const RETRY: Verdict = Object.freeze({ kind: 'nack' });

/**
 * The {@link Message} a handler receives; its book-style methods settle through the pipeline. The
 * first book-style settlement wins (see {@link ReceivedMessage.earlyVerdict}); later ones are
 * ignored with a warning. The state lives on the message itself, so a handler that only returns a
 * verdict costs no extra object.
 */
export class ReceivedMessage<T> implements Message<T> {
  #earlyVerdict: Verdict | undefined;
  #earlyOutcome: Promise<Outcome> | undefined;
  readonly #settler: EarlySettler;
  readonly #delivery: Delivery;

  constructor(
    readonly id: string,
    readonly topic: string,
    readonly group: string,
    readonly body: T,
    readonly headers: Readonly<Record<string, string>>,
    readonly key: string | undefined,
    readonly attempt: number,
    readonly publishedAt: Date,
    readonly contentType: string,
    readonly raw: unknown,
    settler: EarlySettler,
    delivery: Delivery,
  ) {
    this.#settler = settler;
    this.#delivery = delivery;
  }

  /** The verdict of the first book-style settlement, if the handler settled through `ack()`/`nack()`/`deadLetter()`. */
  get earlyVerdict(): Verdict | undefined {
    return this.#earlyVerdict;
  }

  /** The outcome of that settlement, once it was started. */
  get earlyOutcome(): Promise<Outcome> | undefined {
    return this.#earlyOutcome;
  }

  ack(): Promise<void> {
    return this.#settle(ACK, 'ack');
  }

  nack(requeue?: boolean | NackOptions): Promise<void> {
    if (requeue === false) return this.#settle({ kind: 'deadLetter', reason: 'nack-without-requeue' }, 'nack');
    return this.#settle(typeof requeue === 'object' ? { kind: 'nack', ...requeue } : RETRY, 'nack');
  }

  deadLetter(reason: string): Promise<void> {
    return this.#settle({ kind: 'deadLetter', reason }, 'deadLetter');
  }

  #settle(verdict: Verdict, how: string): Promise<void> {
    if (this.#earlyOutcome) {
      this.#settler.warnSettledTwice(this.id, this.#earlyVerdict!.kind, how);
      return this.#earlyOutcome.then(noop);
    }
    this.#earlyVerdict = verdict;
    this.#earlyOutcome = this.#settler.settleEarly(this.#delivery, this.id, verdict, undefined, this.attempt);
    return this.#earlyOutcome.then(noop);
  }
}

function noop(): void {}
