import type { DataSource, EntityManager } from 'typeorm';
import { translateDatabaseError } from '../errors';

/**
 * Runs a use case's statements in one transaction and turns integrity errors from PostgreSQL
 * into domain errors. Everything a service writes goes through here, so a failure anywhere
 * (including the activity-log row) leaves nothing behind.
 */
export async function inTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
): Promise<T> {
  try {
    return await dataSource.transaction(work);
  } catch (error) {
    throw translateDatabaseError(error);
  }
}

/** The same error translation for a single statement outside a transaction. */
export async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translateDatabaseError(error);
  }
}
