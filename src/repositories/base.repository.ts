import type { DataSource, EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import { hydrate, queryRows } from './sql';

/**
 * Repositories are built from a DataSource; every method takes an optional EntityManager so a
 * service can run several of them in one transaction (`dataSource.transaction(m => …)`).
 * The SQL stays written out in each repository; this base only turns its rows into entities.
 */
export abstract class BaseRepository<E extends ObjectLiteral> {
  /** The entity the rows of this repository's statements (`SELECT *`, `RETURNING *`) are. */
  protected abstract readonly entity: EntityTarget<E>;

  constructor(protected readonly dataSource: DataSource) {}

  protected manager(manager?: EntityManager): EntityManager {
    return manager ?? this.dataSource.manager;
  }

  /** Every row of the statement, as entities. */
  protected async rows(sql: string, params: unknown[], manager?: EntityManager): Promise<E[]> {
    const m = this.manager(manager);
    const rows = await queryRows(m, sql, params);
    return rows.map((row) => hydrate(m, this.entity, row));
  }

  /** The statement's first row as an entity, or null when it returns none. */
  protected async row(sql: string, params: unknown[], manager?: EntityManager): Promise<E | null> {
    const [first] = await this.rows(sql, params, manager);
    return first ?? null;
  }

  /** The row an `INSERT … RETURNING *` always returns. */
  protected async insertedRow(sql: string, params: unknown[], manager?: EntityManager): Promise<E> {
    const [first] = await this.rows(sql, params, manager);
    return first;
  }
}
