import type { Broker } from '../Broker.js';
import { describe } from '../pipeline/ConsumePipeline.js';
import type { Logger } from '../Logger.js';
import { silentLogger } from '../Logger.js';
import { decodePayload } from '../wire.js';
import type { PostgresOutbox } from './PostgresOutbox.js';
import type { SqlPool } from './SqlClient.js';

/** Settings of an {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  /** Rows claimed per round. Default 100. */
  readonly batchSize?: number;
  /** Pause between rounds when the outbox was empty. Default 200 ms. */
  readonly idleMs?: number;
  /** Backoff before a row whose publish failed is tried again. Default 1 s. */
  readonly retryDelayMs?: number;
  /** Where the relay logs. */
  readonly logger?: Logger;
}

interface OutboxRow extends Record<string, unknown> {
  seq: string;
  id: string;
  topic: string;
  message_key: string | null;
  headers: Record<string, string>;
  payload: Buffer;
  content_type: string;
}

/**
 * Moves outbox rows to the broker: claims due rows with `FOR UPDATE SKIP LOCKED` (several relays
 * can run side by side), publishes each with its original id, and deletes it in the same
 * transaction once the broker accepted it. A row whose publish fails stays, with its error and a
 * later `available_at`. At-least-once: a crash after the publish and before the commit publishes
 * that row again, with the same id.
 */
export class OutboxRelay {
  readonly #batchSize: number;
  readonly #idleMs: number;
  readonly #retryDelayMs: number;
  readonly #logger: Logger;
  #running: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #published = 0;

  constructor(
    private readonly outbox: PostgresOutbox,
    private readonly pool: SqlPool,
    private readonly broker: Broker,
    options: OutboxRelayOptions = {},
  ) {
    this.#batchSize = options.batchSize ?? 100;
    this.#idleMs = options.idleMs ?? 200;
    this.#retryDelayMs = options.retryDelayMs ?? 1_000;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Messages published by this relay so far. */
  get published(): number {
    return this.#published;
  }

  /** Publishes due rows once; resolves with how many were published. */
  async relayOnce(): Promise<number> {
    const client = await this.pool.connect();
    let published = 0;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<OutboxRow>(
        `SELECT seq, id, topic, message_key, headers, payload, content_type FROM ${this.outbox.table}
         WHERE available_at <= now() ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.#batchSize],
      );
      for (const row of rows) {
        try {
          await this.broker.publish(row.topic, {
            id: row.id,
            body: row.content_type === 'application/octet-stream' ? new Uint8Array(row.payload) : decodePayload(row.payload, row.content_type),
            headers: row.headers,
            ...(row.message_key === null ? {} : { key: row.message_key }),
          });
          await client.query(`DELETE FROM ${this.outbox.table} WHERE seq = $1`, [row.seq]);
          published++;
        } catch (error) {
          this.#logger.warn({ id: row.id, topic: row.topic, err: describe(error) }, 'outbox publish failed; will retry');
          await client.query(
            `UPDATE ${this.outbox.table} SET attempts = attempts + 1, last_error = $2,
             available_at = now() + ($3::double precision * interval '1 millisecond') WHERE seq = $1`,
            [row.seq, describe(error).slice(0, 1024), this.#retryDelayMs],
          );
        }
      }
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw error;
    }
    this.#published += published;
    return published;
  }

  /** Runs rounds until {@link OutboxRelay.stop}. */
  start(): void {
    this.#stopping = false;
    this.#running ??= this.#loop();
  }

  /** Nudges an idle relay to look now (call after committing an enqueue for low latency). */
  nudge(): void {
    this.#wake?.();
  }

  /** Finishes the round under way and stops. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
    this.#running = undefined;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let published = 0;
      try {
        published = await this.relayOnce();
      } catch (error) {
        this.#logger.error({ err: describe(error) }, 'outbox round failed');
      }
      if (published === 0 && !this.#stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#idleMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }
}
