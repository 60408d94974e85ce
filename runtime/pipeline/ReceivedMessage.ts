import type { Message, NackOptions, Verdict } from '../message.js';

/** Settles a verdict given through the book-style methods; called at most once per message. */
export type EarlySettle = (verdict: Verdict, how: string) => Promise<void>;

const ACK: Verdict = Object.freeze({ kind: 'ack' });
const RETRY: Verdict = Object.freeze({ kind: 'nack' });

/** The {@link Message} a handler receives; its book-style methods settle through the pipeline. */
export class ReceivedMessage<T> implements Message<T> {
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
    private readonly settle: EarlySettle,
  ) {}

  ack(): Promise<void> {
    return this.settle(ACK, 'ack');
  }

  nack(requeue?: boolean | NackOptions): Promise<void> {
    if (requeue === false) return this.settle({ kind: 'deadLetter', reason: 'nack-without-requeue' }, 'nack');
    return this.settle(typeof requeue === 'object' ? { kind: 'nack', ...requeue } : RETRY, 'nack');
  }

  deadLetter(reason: string): Promise<void> {
    return this.settle({ kind: 'deadLetter', reason }, 'deadLetter');
  }
}
