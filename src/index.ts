/**
 * The public API of the PixCrawler data layer: what an application imports.
 */
export * from './entities';
export { migrations } from './migrations';
export { dataSourceOptions } from './connection/data-source-options';
export { maskDatabaseUrl } from './connection/database-url';
export { useReplicaFallback, type ReplicaFallbackOptions } from './connection/replica-fallback';
export { EmbeddedPostgresMissingError, startEmbeddedPostgres } from './local/embedded-postgres';
export type { EmbeddedServer, EmbeddedServerOptions } from './local/embedded-postgres';
export { migrationStates, migrationStatus, pendingMigrations } from './inspect/migration-states';
export type { MigrationState, MigrationStatus } from './inspect/migration-states';
export { revertLastMigration, runPendingMigrations } from './migrator/migrator';
export type { MigrateOptions, MigratorEvents } from './migrator/migrator';
export { MigrationRefusedError } from './migrator/migration-refused-error';
export type { MigrationRefusal, RefusalReason } from './migrator/migration-refused-error';
export type { MigrationObject, MigrationTraits, PixCrawlerMigration } from './migrations';
export { planMigrations } from './migrator/plan';
export type {
  MigrationPlan,
  PlannedMigration,
  PlanStep,
  PlannedLock,
  UnrunRead,
} from './migrator/plan';
export type { LockMode } from './migrator/statement-impact';
export { checkAdoption } from './upgrade/adoption';
export type {
  AdoptionAction,
  AdoptionEntry,
  AdoptionOptions,
  AdoptionReason,
  AdoptionReport,
  ColumnRename,
  ColumnWidening,
  RewriteLimit,
  TableSize,
  TimestampConversion,
} from './upgrade/adoption';
export { detectOrigin, type DatabaseOrigin } from './upgrade/origin';
export { incompleteMigrations } from './inspect/migration-states';
export type { IncompleteMigration } from './inspect/migration-states';
export { assertPrimary, isStandby, StandbyServerError } from './connection/server-role';
export {
  connectionBudget,
  ConnectionBudgetError,
  type ConnectionBudget,
} from './connection/connection-budget';
export type { RunQuery } from './connection/server-role';
export {
  currentWalLsn,
  obtainCaughtUpConnection,
  waitForReplay,
  type CaughtUpReaderOptions,
  type PooledConnection,
  type ReadFrom,
} from './connection/read-routing';
export { schemaDrift } from './inspect/schema-drift';
export { openDatabaseTarget } from './local/database-target';
export type { DatabaseTarget } from './local/database-target';
export * from './errors';
export {
  domainErrorResponse,
  type DomainErrorBody,
  type DomainErrorResponse,
} from './http/domain-error-response';
export * from './dto';
export * from './repositories';
export * from './services';
export * from './storage';
