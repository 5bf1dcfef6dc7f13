import type { MigrationInterface } from 'typeorm';

/**
 * What a migration tells the runner about itself, beside TypeORM's own `transaction = false`.
 * The runner reads these from the migration instances it is given; it never imports a migration
 * class, so a new migration needs no change in the runner.
 */
export interface MigrationTraits {
  /**
   * This migration creates tables an existing PixCrawler database already holds. On such a
   * database it is adopted (`--baseline`: checked and recorded as applied) instead of run.
   */
  readonly adoptsExistingTables?: boolean;
  /**
   * This migration adds or validates constraints that rows already in the tables may break, so
   * the preflight check of those rows runs (and must be clean) before it starts.
   */
  readonly constrainsExistingRows?: boolean;
  /**
   * Objects up() creates that must exist while the migration is recorded as applied. An
   * interrupted revert can leave the record with half of them gone; migrate and verify look.
   */
  readonly creates?: readonly MigrationObject[];
  /**
   * up() may run again where it is recorded: every step keeps what is done and makes what is
   * missing (CREATE INDEX CONCURRENTLY guarded by the catalog, for one). migrate then repairs
   * missing objects by running it again.
   */
  readonly rerunnable?: boolean;
}

/** A table, index or constraint (on `table`) a migration creates. */
export interface MigrationObject {
  kind: 'table' | 'index' | 'constraint';
  table: string;
  name: string;
}

export type PixCrawlerMigration = MigrationInterface & MigrationTraits;

/** The migration's name as TypeORM records it in the migrations table. */
export function migrationName(migration: MigrationInterface): string {
  return migration.name ?? migration.constructor.name;
}
