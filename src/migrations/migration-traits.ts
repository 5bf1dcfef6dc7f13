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
}

export type PixCrawlerMigration = MigrationInterface & MigrationTraits;

/** The migration's name as TypeORM records it in the migrations table. */
export function migrationName(migration: MigrationInterface): string {
  return migration.name ?? migration.constructor.name;
}
