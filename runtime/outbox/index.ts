/**
 * The transactional outbox on PostgreSQL: write messages in your own transaction, let a relay
 * publish them through any broker. Needs a `pg` client (optional peer dependency).
 *
 * @packageDocumentation
 */
export { PostgresOutbox, type PostgresOutboxOptions } from './PostgresOutbox.js';
export { OutboxRelay, type OutboxRelayOptions } from './OutboxRelay.js';
export type { SqlClient, SqlPool } from './SqlClient.js';
