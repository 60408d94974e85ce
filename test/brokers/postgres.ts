import pg from 'pg';
import { BrokerUnavailableError } from '../../runtime/errors.js';

/** Connection settings of the PostgreSQL every machine runs (trust auth, database `test`). */
export const POSTGRES_URL = process.env.OMNIQUEUE_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A pool on the running PostgreSQL. PostgreSQL is pre-started on every machine, CI included; if it
 * does not answer, this says how to start it and fails.
 */
export async function requirePostgres(): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 6 });
  try {
    await pool.query('SELECT 1');
    return pool;
  } catch (error) {
    await pool.end();
    throw new BrokerUnavailableError(
      `PostgreSQL does not answer at ${POSTGRES_URL}; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
      { cause: error },
    );
  }
}
