import type { DataSource, EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ReadFrom } from '../connection/read-routing';
import { hydrate, queryRows } from './sql';

/**
 * Repositories are built from a DataSource; every method takes an optional EntityManager so a
 * service can run several of them in one transaction (`dataSource.transaction(m => …)`).
 * The SQL stays written out in each repository; this base only turns its rows into entities.
 *
 * Where a statement runs is decided here, once: `rows`/`row`/`insertedRow` (and `queryRows`
 * without a fourth argument) run on the primary; `replicaRows`/`replicaRow` mark a read that
 * tolerates replication lag, which runs on a replica when the DataSource has one. A caller's
 * transaction overrides both. docs/library.md lists which method reads where and why.
 */
export abstract class BaseRepository<E extends ObjectLiteral> {
  /** The entity the rows of this repository's statements (`SELECT *`, `RETURNING *`) are. */
  protected abstract readonly entity: EntityTarget<E>;

  constructor(protected readonly dataSource: DataSource) {}

  protected manager(manager?: EntityManager): EntityManager {
    return manager ?? this.dataSource.manager;
  }

  /** Every row of the statement, as entities; run on the primary. */
  protected rows(sql: string, params: unknown[], manager?: EntityManager): Promise<E[]> {
    return this.rowsFrom('primary', sql, params, manager);
  }

  /** Every row of a read that tolerates replication lag, as entities; run on a replica. */
  protected replicaRows(sql: string, params: unknown[], manager?: EntityManager): Promise<E[]> {
    return this.rowsFrom('replica', sql, params, manager);
  }

  /** The first row of a read that tolerates replication lag, or null; run on a replica. */
  protected async replicaRow(
    sql: string,
    params: unknown[],
    manager?: EntityManager,
  ): Promise<E | null> {
    const [first] = await this.replicaRows(sql, params, manager);
    return first ?? null;
  }

  private async rowsFrom(
    from: ReadFrom,
    sql: string,
    params: unknown[],
    manager?: EntityManager,
  ): Promise<E[]> {
    const m = this.manager(manager);
    const rows = await queryRows(m, sql, params, from);
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
