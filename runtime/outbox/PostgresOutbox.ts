import { InvalidMessageError, InvalidOptionsError } from '../errors.js';
import type { PublishInput } from '../message.js';
import { newMessageId } from '../newMessageId.js';
import { validateName } from '../validateName.js';
import { encodeBody, normaliseHeaders } from '../wire.js';
import type { SqlClient } from './SqlClient.js';

/** Settings of a {@link PostgresOutbox}. */
export interface PostgresOutboxOptions {
  /** Table name (optionally schema-qualified). Default `omniqueue_outbox`. */
  readonly table?: string;
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/**
 * The transactional outbox: `enqueue` writes a message into the outbox table with the caller's own
 * client, inside the caller's transaction, so the message exists exactly when the business change
 * commits. An {@link OutboxRelay} then publishes it through any broker, keeping its id, so an
 * idempotent consumer can drop the duplicate a relay crash may cause.
 */
export class PostgresOutbox {
  /** The (validated) table name. */
  readonly table: string;

  constructor(options: PostgresOutboxOptions = {}) {
    const table = options.table ?? 'omniqueue_outbox';
    if (!TABLE_NAME.test(table)) throw new InvalidOptionsError(`Outbox table name '${table}' must be an SQL identifier, optionally schema-qualified.`);
    this.table = table;
  }

  /** Creates the table and its index if missing. Idempotent. */
  async install(client: SqlClient): Promise<void> {
    await client.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
      seq bigserial PRIMARY KEY,
      id text NOT NULL,
      topic text NOT NULL,
      message_key text,
      headers jsonb NOT NULL,
      payload bytea NOT NULL,
      content_type text NOT NULL,
      available_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now(),
      attempts integer NOT NULL DEFAULT 0,
      last_error text
    )`);
    await client.query(`CREATE INDEX IF NOT EXISTS ${this.table.replace('.', '_')}_due ON ${this.table} (available_at, seq)`);
  }

  /**
   * Adds a message to the outbox with `client` — call it inside your transaction. Validates and
   * encodes exactly as `publish` does, so a bad message fails here, before your transaction commits.
   */
  async enqueue<T>(client: SqlClient, topic: string, message: PublishInput<T>, options: { delayMs?: number } = {}): Promise<{ id: string }> {
    validateName('topic', topic);
    if (message === null || typeof message !== 'object' || !('body' in message)) throw new InvalidMessageError('enqueue(client, topic, message): message must have a body.');
    const id = message.id ?? newMessageId();
    const headers = normaliseHeaders(message.headers);
    const { payload, contentType } = encodeBody(message.body);
    const delayMs = options.delayMs ?? 0;
    if (!(delayMs >= 0)) throw new InvalidOptionsError(`delayMs must be ≥ 0, got ${delayMs}.`);
    await client.query(
      `INSERT INTO ${this.table} (id, topic, message_key, headers, payload, content_type, available_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + ($7::double precision * interval '1 millisecond'))`,
      [id, topic, message.key ?? null, JSON.stringify(headers), Buffer.from(payload), contentType, delayMs],
    );
    return { id };
  }

  /** Messages waiting in the outbox. */
  async pending(client: SqlClient): Promise<number> {
    const { rows } = await client.query<{ count: string }>(`SELECT count(*)::text AS count FROM ${this.table}`);
    return Number(rows[0]?.count ?? 0);
  }
}
