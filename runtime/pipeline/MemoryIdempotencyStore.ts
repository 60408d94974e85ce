import type { ClaimResult, IdempotencyStore } from './IdempotencyStore.js';

interface Entry {
  state: 'in-progress' | 'done';
  expiresAt: number;
}

/** In-process {@link IdempotencyStore}: for one process or tests. Expired entries are swept lazily. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  #sweepAt = 0;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Number of ids currently remembered (claimed or done). */
  get size(): number {
    return this.#entries.size;
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const now = this.#now();
    this.#sweep(now);
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now) return entry.state === 'done' ? 'done' : 'in-progress';
    this.#entries.set(key, { state: 'in-progress', expiresAt: now + leaseMs });
    return 'claimed';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.#entries.set(key, { state: 'done', expiresAt: this.#now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry?.state === 'in-progress') this.#entries.delete(key);
  }

  #sweep(now: number): void {
    if (now < this.#sweepAt) return;
    this.#sweepAt = now + 1_000;
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }
}
