/**
 * Idempotency store on Redis (needs `ioredis`, an optional peer dependency).
 *
 * @packageDocumentation
 */
export { RedisIdempotencyStore, type RedisIdempotencyStoreOptions } from './RedisIdempotencyStore.js';
