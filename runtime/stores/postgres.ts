/**
 * Idempotency store on PostgreSQL (needs a `pg` client, an optional peer dependency).
 *
 * @packageDocumentation
 */
export { PostgresIdempotencyStore, type PostgresIdempotencyStoreOptions } from './PostgresIdempotencyStore.js';
