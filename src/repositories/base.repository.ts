import type { DataSource, EntityManager } from 'typeorm';

/**
 * Repositories are built from a DataSource; every method takes an optional EntityManager so a
 * service can run several of them in one transaction (`dataSource.transaction(m => …)`).
 */
export abstract class BaseRepository {
  constructor(protected readonly dataSource: DataSource) {}

  protected manager(manager?: EntityManager): EntityManager {
    return manager ?? this.dataSource.manager;
  }
}
