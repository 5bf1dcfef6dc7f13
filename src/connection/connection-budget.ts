import type { DataSource } from 'typeorm';

/**
 * How many connections a server lets ordinary clients open: max_connections less the slots it
 * keeps for superusers (superuser_reserved_connections) and, on PostgreSQL 16 and newer, for
 * roles with pg_use_reserved_connections (reserved_connections).
 */
export interface ConnectionBudget {
  maxConnections: number;
  reserved: number;
  /** maxConnections - reserved: what all ordinary clients together may hold. */
  available: number;
}

export async function connectionBudget(dataSource: DataSource): Promise<ConnectionBudget> {
  const [row]: { max: number; superuser: number; reserved: number }[] = await dataSource.query(
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int AS superuser,
            coalesce(current_setting('reserved_connections', true), '0')::int AS reserved`,
  );
  const reserved = row.superuser + row.reserved;
  return { maxConnections: row.max, reserved, available: row.max - reserved };
}

/**
 * Something would need more connections than the server allows at all: refused before it opens
 * them, rather than failing half way with "too many clients already".
 */
export class ConnectionBudgetError extends Error {
  override name = 'ConnectionBudgetError';
  constructor(
    /** What needs them, e.g. `a worker with concurrency 1000`. */
    readonly what: string,
    readonly needed: number,
    readonly budget: ConnectionBudget,
  ) {
    super(
      `${what} needs up to ${needed} connections, but the server allows ${budget.available} ` +
        `(max_connections ${budget.maxConnections} less ${budget.reserved} reserved), shared ` +
        'with every other client.',
    );
  }
}

/** Throws ConnectionBudgetError when `needed` connections exceed what the server allows. */
export async function assertConnectionBudget(
  dataSource: DataSource,
  needed: number,
  what: string,
): Promise<ConnectionBudget> {
  const budget = await connectionBudget(dataSource);
  if (needed > budget.available) throw new ConnectionBudgetError(what, needed, budget);
  return budget;
}
