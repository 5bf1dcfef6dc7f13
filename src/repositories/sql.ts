import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import { statementRunner, type ReadFrom } from '../connection/read-routing';

/**
 * Runs one SQL statement and returns its rows, whatever the command. (`EntityManager.query`
 * returns `[rows, count]` for UPDATE and DELETE but plain rows otherwise; the repositories want
 * one shape.) Uses the manager's query runner when it has one, so the statement joins its
 * transaction; otherwise a connection to the server `from` names (see ReadFrom): the primary
 * unless the caller declares the statement a lag-tolerant read.
 */
export async function queryRows<T = Record<string, unknown>>(
  manager: EntityManager,
  sql: string,
  params: unknown[] = [],
  from: ReadFrom = 'primary',
): Promise<T[]> {
  const { runner, owned } = statementRunner(manager, from);
  try {
    const result = await runner.query(sql, params, true);
    return (result.records ?? []) as T[];
  } finally {
    if (owned) await runner.release();
  }
}

/**
 * A raw snake_case row (`RETURNING *`, `SELECT t.*`) as an entity instance, converted exactly as
 * TypeORM converts rows it loads itself (transformers, dates, jsonb).
 */
export function hydrate<E extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<E>,
  row: Record<string, unknown>,
): E {
  const metadata = manager.connection.getMetadata(target);
  const entity = metadata.create() as E;
  for (const column of metadata.columns) {
    if (!(column.databaseName in row)) continue;
    const value = manager.connection.driver.prepareHydratedValue(row[column.databaseName], column);
    column.setEntityValue(entity, value);
  }
  return entity;
}

/** Opaque keyset cursor for `(timestamp, id)` orderings. */
export function encodeCursor(parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string): unknown[] | undefined {
  try {
    const parts: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return Array.isArray(parts) ? parts : undefined;
  } catch {
    return undefined;
  }
}
