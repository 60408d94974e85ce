import type { Redis } from 'ioredis';
import type { ClaimResult, IdempotencyStore } from '../pipeline/IdempotencyStore.js';

/** Settings of a {@link RedisIdempotencyStore}. */
export interface RedisIdempotencyStoreOptions {
  /** Key prefix. Default `omniqueue:idem:`. */
  readonly prefix?: string;
}

const IN_PROGRESS = 'in-progress';
const DONE = 'done';

const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'claimed'`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * {@link IdempotencyStore} on Redis, shared by every consumer of a group: a claim is a key with a
 * lease (`PX`), completion rewrites it as done with the remembering time, both expire by
 * themselves. Claim and release are Lua scripts, so two consumers never both claim one id.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #prefix: string;

  constructor(
    private readonly redis: Redis,
    options: RedisIdempotencyStoreOptions = {},
  ) {
    this.#prefix = options.prefix ?? 'omniqueue:idem:';
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const result = (await this.redis.eval(CLAIM, 1, this.#prefix + key, IN_PROGRESS, String(Math.max(1, Math.ceil(leaseMs))))) as string;
    return result === DONE ? 'done' : result === IN_PROGRESS ? 'in-progress' : 'claimed';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.#prefix + key, DONE, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async release(key: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.#prefix + key, IN_PROGRESS);
  }
}
