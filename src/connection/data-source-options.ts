import type { DataSourceOptions } from 'typeorm';
import { entities } from '../entities';
import { migrations } from '../migrations';

type PostgresOptions = Extract<DataSourceOptions, { type: 'postgres' }>;

/**
 * The recommended TypeORM options for this schema, for an application to spread into its own
 * configuration. Migrations are classes (not file globs), so the same options work from
 * TypeScript sources and from the compiled package.
 */
export function dataSourceOptions(
  overrides: Partial<PostgresOptions> & { url?: string } = {},
): PostgresOptions {
  return {
    type: 'postgres',
    entities,
    migrations,
    migrationsTableName: 'migrations',
    // 'each' lets a migration opt out of its transaction (CREATE INDEX CONCURRENTLY needs that);
    // the default 'all' refuses such migrations.
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    ...overrides,
  } as PostgresOptions;
}
