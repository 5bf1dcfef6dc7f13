import type { DataSource } from 'typeorm';

/** Runs one SQL statement on whatever connection a caller has (QueryRunner, pg Client, …). */
export type RunQuery = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** True when the server is a standby (in recovery): it replays WAL and refuses every write. */
export async function isStandby(query: RunQuery): Promise<boolean> {
  const [row] = await query('SELECT pg_is_in_recovery() AS standby');
  return row.standby === true;
}

/**
 * An operation that changes the database was pointed at a standby. Nothing was changed: a
 * standby refuses writes, and its schema and rows come from the primary by replication.
 */
export class StandbyServerError extends Error {
  constructor(
    /** What was refused, as the caller named it ("migrate", "preflight --fix"). */
    readonly operation: string,
    /** The database the DataSource's primary connection reached. */
    readonly database: string,
  ) {
    super(
      `${operation} refused: database "${database}" is on a standby server (in recovery, ` +
        'read-only). Run it against the primary; the standby receives the change by replication.',
    );
    this.name = 'StandbyServerError';
  }
}

/**
 * Throws StandbyServerError unless the DataSource's primary connection (the one migrations,
 * repairs and transactions use; `replication.master` when it has replicas) reaches a server
 * that accepts writes. Call it first in anything that changes the schema or repairs rows.
 */
export async function assertPrimary(dataSource: DataSource, operation: string): Promise<void> {
  if (await isStandby((sql, params) => dataSource.query(sql, params))) {
    throw new StandbyServerError(operation, dataSource.driver.database ?? '(unknown)');
  }
}
