import type { DataSourceOptions } from 'typeorm';
import { entities } from '../entities';
import { migrations } from '../migrations';
import { assertPostgresUrl, InvalidDatabaseUrlError } from './database-url';

type PostgresOptions = Extract<DataSourceOptions, { type: 'postgres' }>;

/**
 * The recommended TypeORM options for this schema, for an application to spread into its own
 * configuration. Migrations are classes (not file globs), so the same options work from
 * TypeScript sources and from the compiled package.
 *
 * "The schema" has one meaning everywhere: the `schema` option when given, else the connection's
 * current_schema(). A `schema` option also becomes each connection's search_path, so the
 * migrations' and repositories' SQL, TypeORM's own queries and the catalog readers all work in
 * the same schema.
 */
export function dataSourceOptions(
  overrides: Partial<PostgresOptions> & { url?: string } = {},
): PostgresOptions {
  const { schema, url } = overrides;
  // A malformed URL is refused here, before TypeORM hands it to the driver (which would send a
  // `postgresql:/user:pw@host/db` whole, password included, to the default server, or look up
  // part of an unencoded password as the host name).
  // `{ url: process.env.DATABASE_URL }` with the variable unset, and nothing else to connect
  // with: say so here, instead of pg's "no PostgreSQL user name specified" at initialize().
  const connectsOtherwise = overrides.host !== undefined || overrides.replication !== undefined;
  if ('url' in overrides && (url === undefined || url === '') && !connectsOtherwise) {
    throw new InvalidDatabaseUrlError(
      'dataSourceOptions was given no database URL (url is ' +
        `${url === '' ? 'empty' : 'undefined'}: is DATABASE_URL set?), and no host or ` +
        'replication settings either. Expected postgresql://user:password@host:5432/database',
      'missing',
    );
  }
  if (url !== undefined) assertPostgresUrl(url);
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new Error(
      `schema must be a lower-case PostgreSQL identifier (letters, digits, _), got "${schema}"`,
    );
  }
  const extra = schema
    ? { ...overrides.extra, options: `-c search_path=${schema}` }
    : overrides.extra;
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
    ...(extra && { extra }),
  } as PostgresOptions;
}
