import type { Delivery } from '../../runtime/contract.js';
import { WireHeader } from '../../runtime/wire.js';
import { KEY_HEADER } from './protocol.js';

/** The native side of a ZeroMQ delivery, exposed as `message.raw`. */
export interface ZeroMqRawDelivery {
  /** Topic frame. */
  readonly topic: string;
  /** Headers frame, parsed (with `omniqueue-attempt` and `omniqueue-key`). */
  readonly headers: Readonly<Record<string, string>>;
  /** The publisher's tag of this delivery. */
  readonly deliveryTag: string;
}

/** How a delivery reports its verdict: `undefined` acks, a number nacks with that delay. */
export type Settle = (nackDelayMs: number | undefined) => void;

/** One ZeroMQ delivery: the three message frames, settled once through `settle`. */
export class ZeroMqDelivery implements Delivery {
  readonly headers: Readonly<Record<string, string>>;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly nativeId: string | undefined;
  readonly timestamp: number | undefined;
  readonly raw: ZeroMqRawDelivery;
  #settled = false;

  constructor(
    topic: string,
    wireHeaders: Readonly<Record<string, string>>,
    readonly payload: Uint8Array,
    deliveryTag: string,
    private readonly settle: Settle,
  ) {
    const headers: Record<string, string> = { ...wireHeaders };
    this.key = headers[KEY_HEADER];
    delete headers[KEY_HEADER];
    this.headers = headers;
    const attempt = Number(headers[WireHeader.Attempt]);
    this.attempt = Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
    this.nativeId = headers[WireHeader.Id];
    const published = Number(headers[WireHeader.PublishedAt]);
    this.timestamp = Number.isFinite(published) ? published : undefined;
    this.raw = { topic, headers: wireHeaders, deliveryTag };
  }

  async ack(): Promise<void> {
    this.#settle(undefined);
  }

  async nack(delayMs: number): Promise<void> {
    this.#settle(Math.max(0, delayMs));
  }

  #settle(nackDelayMs: number | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    this.settle(nackDelayMs);
  }
}
