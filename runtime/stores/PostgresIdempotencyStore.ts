import { InvalidOptionsError } from '../errors.js';
import type { SqlClient } from '../outbox/SqlClient.js';
import type { ClaimResult, IdempotencyStore } from '../pipeline/IdempotencyStore.js';

/** Settings of a {@link PostgresIdempotencyStore}. */
export interface PostgresIdempotencyStoreOptions {
  /** Table name (optionally schema-qualified). Default `omniqueue_processed`. */
  readonly table?: string;
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/**
 * {@link IdempotencyStore} on PostgreSQL: one row per id with its state and expiry. A claim is one
 * `INSERT … ON CONFLICT DO UPDATE … WHERE expired` statement, so concurrent consumers never both
 * claim an id. Expired rows are reused by later claims; `purgeExpired` deletes the rest.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  readonly #table: string;

  constructor(
    private readonly client: SqlClient,
    options: PostgresIdempotencyStoreOptions = {},
  ) {
    const table = options.table ?? 'omniqueue_processed';
    if (!TABLE_NAME.test(table)) throw new InvalidOptionsError(`Table name '${table}' must be an SQL identifier, optionally schema-qualified.`);
    this.#table = table;
  }

  /** Creates the table if missing. Idempotent. */
  async install(): Promise<void> {
    await this.client.query(`CREATE TABLE IF NOT EXISTS ${this.#table} (
      key text PRIMARY KEY,
      state text NOT NULL,
      expires_at timestamptz NOT NULL
    )`);
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const { rows } = await this.client.query<{ claimed: boolean }>(
      `INSERT INTO ${this.#table} (key, state, expires_at) VALUES ($1, 'in-progress', now() + ($2::double precision * interval '1 millisecond'))
       ON CONFLICT (key) DO UPDATE SET state = 'in-progress', expires_at = EXCLUDED.expires_at
       WHERE ${this.#table}.expires_at <= now()
       RETURNING true AS claimed`,
      [key, leaseMs],
    );
    if (rows.length > 0) return 'claimed';
    const existing = await this.client.query<{ state: string }>(`SELECT state FROM ${this.#table} WHERE key = $1`, [key]);
    return existing.rows[0]?.state === 'done' ? 'done' : 'in-progress';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    await this.client.query(
      `INSERT INTO ${this.#table} (key, state, expires_at) VALUES ($1, 'done', now() + ($2::double precision * interval '1 millisecond'))
       ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = EXCLUDED.expires_at`,
      [key, ttlMs],
    );
  }

  async release(key: string): Promise<void> {
    await this.client.query(`DELETE FROM ${this.#table} WHERE key = $1 AND state = 'in-progress'`, [key]);
  }

  /** Deletes expired rows; returns how many. */
  async purgeExpired(): Promise<number> {
    const { rowCount } = await this.client.query(`DELETE FROM ${this.#table} WHERE expires_at <= now()`);
    return rowCount ?? 0;
  }
}
