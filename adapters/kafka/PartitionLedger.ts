/**
 * The offsets of one partition that a consumer handed out, and how far they are settled.
 *
 * Kafka can only commit a position ("everything before offset N is done"), never a single
 * message. With several deliveries of one partition in flight at once (prefetch > 1) they settle
 * out of order, so the committable position is the end of the contiguous run of settled offsets
 * from the oldest delivery still tracked: offsets 5, 6, 7 handed out, 7 and 5 settled → commit 6;
 * then 6 settles → commit 8. A nack never advances the position past the nacked offset by itself
 * (it is settled only after its copy was re-published and acknowledged).
 */
export class PartitionLedger {
  readonly #offsets: number[] = [];
  readonly #settled: boolean[] = [];
  /** Index of the oldest entry still tracked. */
  #head = 0;
  /** Sequence number of `#offsets[0]`. */
  #base = 0;
  #committable: number | undefined;
  #nextFetch: number | undefined;

  /**
   * @param startAt The offset the partition resumes from after a seek: earlier offsets are
   * ignored by {@link accepts}.
   */
  constructor(startAt?: number) {
    this.#nextFetch = startAt;
  }

  /** The offset after the last one handed out (where a re-fetch must resume), if any. */
  get nextFetch(): number | undefined {
    return this.#nextFetch;
  }

  /** The position to commit: every handed-out offset before it is settled. */
  get committable(): number | undefined {
    return this.#committable;
  }

  /** Deliveries handed out and not yet settled, plus settled ones waiting behind an unsettled one. */
  get tracked(): number {
    return this.#offsets.length - this.#head;
  }

  /** True when `offset` is new for this ledger (offsets are handed out in increasing order). */
  accepts(offset: number): boolean {
    return this.#nextFetch === undefined || offset >= this.#nextFetch;
  }

  /** Records a handed-out offset; returns the token to settle it with. */
  track(offset: number): number {
    this.#offsets.push(offset);
    this.#settled.push(false);
    this.#nextFetch = offset + 1;
    return this.#base + this.#offsets.length - 1;
  }

  /**
   * Marks the delivery with `token` settled. Returns the new committable position when it
   * advanced, `undefined` when it did not (an older delivery is still open, or the token was
   * already settled).
   */
  settle(token: number): number | undefined {
    const index = token - this.#base;
    if (index < this.#head || index >= this.#offsets.length || this.#settled[index]) return undefined;
    this.#settled[index] = true;
    if (index !== this.#head) return undefined;
    while (this.#head < this.#offsets.length && this.#settled[this.#head]) {
      this.#committable = this.#offsets[this.#head]! + 1;
      this.#head++;
    }
    this.#compact();
    return this.#committable;
  }

  #compact(): void {
    if (this.#head === this.#offsets.length) {
      this.#base += this.#head;
      this.#offsets.length = 0;
      this.#settled.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#offsets.length) {
      this.#offsets.splice(0, this.#head);
      this.#settled.splice(0, this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }
}
