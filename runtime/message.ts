/**
 * The one message type every source produces, and the verdicts a handler returns.
 *
 * @packageDocumentation
 */

/** String-to-string header map. Header names keep the case the producer gave them. */
export type Headers = Record<string, string>;

/** What a producer hands to `publish`: everything but `body` is optional. */
export interface PublishInput<T = unknown> {
  /** Producer-assigned id, kept end to end. Defaults to a new UUIDv7. */
  readonly id?: string;
  /** JSON-serialisable body, or a `Uint8Array` / `Buffer` sent as raw bytes. */
  readonly body: T;
  /** Headers carried natively by the broker. Numbers and booleans are turned into strings. */
  readonly headers?: Readonly<Record<string, string | number | boolean>>;
  /** Ordering / partition key: messages with the same key keep their order where the adapter can. */
  readonly key?: string;
}

/** Redelivery request: `delayMs` overrides the retry policy's backoff for this attempt. */
export interface NackOptions {
  /** Redeliver no sooner than this many milliseconds from now. */
  readonly delayMs?: number;
}

/** The handler's decision about one message. */
export type Verdict =
  | { readonly kind: 'ack' }
  | { readonly kind: 'nack'; readonly delayMs?: number }
  | { readonly kind: 'deadLetter'; readonly reason: string };

/** The message was handled: remove it from the group's queue. */
export function ack(): Verdict {
  return ACK;
}

/** The message should be delivered again, after the retry policy's backoff or after `delayMs`. */
export function nack(options: NackOptions = {}): Verdict {
  return options.delayMs === undefined ? NACK : { kind: 'nack', delayMs: options.delayMs };
}

/** The message can never be handled: send it straight to the dead-letter destination, no retry. */
export function deadLetter(reason: string): Verdict {
  return { kind: 'deadLetter', reason };
}

const ACK: Verdict = Object.freeze({ kind: 'ack' });
const NACK: Verdict = Object.freeze({ kind: 'nack' });

/** One received message, the same shape from every broker and trigger. */
export interface Message<T = unknown> {
  /** The producer's id (UUIDv7 by default), or the broker's id for foreign producers. */
  readonly id: string;
  /** Topic it was published to. */
  readonly topic: string;
  /** Consumer group that received it. */
  readonly group: string;
  /** Decoded body: parsed JSON, a string for `text/*`, a `Uint8Array` for other content types. */
  readonly body: T;
  /** Headers, with OmniQueue's own `omniqueue-*` metadata removed. */
  readonly headers: Readonly<Headers>;
  /** Ordering key, when the producer set one. */
  readonly key: string | undefined;
  /** 1 on first delivery; from the broker's delivery count where it has one. */
  readonly attempt: number;
  /** When the producer published it. */
  readonly publishedAt: Date;
  /** Content type of the payload on the wire. */
  readonly contentType: string;
  /** The native message of the broker or trigger: the escape hatch. */
  readonly raw: unknown;
  /** Book style: acknowledge now. Settling twice is a no-op with a warning. */
  ack(): Promise<void>;
  /**
   * Book style: `nack(true)` or `nack()` redelivers after backoff, `nack({ delayMs })` after a delay,
   * `nack(false)` dead-letters the message. Settling twice is a no-op with a warning.
   */
  nack(requeue?: boolean | NackOptions): Promise<void>;
  /** Send to the dead-letter destination now. Settling twice is a no-op with a warning. */
  deadLetter(reason: string): Promise<void>;
}

/** A user handler: one function for every broker and every runtime. */
export type Handler<T = unknown> = (message: Message<T>) => Verdict | void | Promise<Verdict | void>;
