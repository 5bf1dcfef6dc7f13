/**
 * The public API of the PixCrawler data layer: what an application imports.
 */
export * from './entities';
export { migrations } from './migrations';
export { dataSourceOptions } from './db/data-source-options';
export { maskDatabaseUrl } from './db/database-url';
export { startEmbeddedPostgres } from './db/embedded-postgres';
export type { EmbeddedServer, EmbeddedServerOptions } from './db/embedded-postgres';
export {
  migrationStates,
  pendingMigrations,
  revertLastMigration,
  runPendingMigrations,
} from './db/migrator';
export type { MigrationState, MigratorEvents } from './db/migrator';
export { assertPrimary, isStandby, StandbyServerError } from './connection/server-role';
export type { RunQuery } from './connection/server-role';
export {
  connectCaughtUpReader,
  currentWalLsn,
  waitForReplay,
  type CaughtUpReaderOptions,
  type ReadFrom,
} from './connection/read-routing';
export { schemaDrift } from './db/schema-drift';
export { openDatabaseTarget } from './db/database-target';
export type { DatabaseTarget } from './db/database-target';
export * from './errors';
export * from './dto';
export * from './repositories';
export * from './services';
