/** The slice of a PostgreSQL client the outbox uses; `pg`'s `Client` and `PoolClient` fit as they are. */
export interface SqlClient {
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** A pool of clients; `pg`'s `Pool` fits as it is. */
export interface SqlPool {
  connect(): Promise<SqlClient & { release(error?: Error | boolean): void }>;
}
