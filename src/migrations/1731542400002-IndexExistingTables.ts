import type { QueryRunner } from 'typeorm';
import type { PixCrawlerMigration } from './migration-traits';
import {
  applyMigrationTimeouts,
  assertOutsideTransaction,
  createIndexConcurrently,
  dropIndexConcurrently,
  indexState,
  releaseIndex,
  resetMigrationTimeouts,
  uniqueConstraintsOnColumn,
  type IndexDefinition,
} from './lock-safe-ddl';
import { quoteIdentifier } from '../sql/quote';

/**
 * The guide's new indexes on the five existing tables, built CONCURRENTLY so that reads and
 * writes go on during a build that may take minutes on millions of rows. That needs to run
 * outside a transaction (hence `transaction = false`), so every step is idempotent: when a run
 * is killed half way, the next run keeps the indexes already built, rebuilds any INVALID one the
 * interruption left, and goes on.
 *
 * The least work the catalog allows (createIndexConcurrently): an index of SPEC's name and
 * definition is kept, one of SPEC's definition under another name renamed, one of SPEC's name
 * and another definition replaced (built under a temporary name first).
 *
 * The unique index ix_profiles_email then takes over from the old unique constraint on
 * profiles.email (whatever its name), which is dropped: uniqueness holds at every moment. On a
 * database PixCrawler's Alembic 001 built, ix_profiles_email is a plain index beside that
 * constraint: the unique one replaces it, then the constraint goes.
 *
 * squawk (npm run lint:migrations) warns prefer-robust-stmts (no IF NOT EXISTS / IF EXISTS
 * outside a transaction); kept on purpose: every statement is guarded by a catalog lookup
 * instead (indexState, uniqueConstraintsOnColumn), which also rebuilds an INVALID index that
 * IF NOT EXISTS would keep. Rerunning after a kill is tested (interrupted-migration.test.ts).
 */
const INDEXES: IndexDefinition[] = [
  { name: 'ix_profiles_email', table: 'profiles', columns: ['email'], unique: true },
  { name: 'ix_project_user_id', table: 'projects', columns: ['user_id'] },
  { name: 'ix_crawl_job_status', table: 'crawl_jobs', columns: ['status'] },
  { name: 'ix_crawl_job_project_status', table: 'crawl_jobs', columns: ['project_id', 'status'] },
  { name: 'ix_image_crawl_job_id', table: 'images', columns: ['crawl_job_id'] },
  { name: 'ix_activity_log_user_id', table: 'activity_logs', columns: ['user_id'] },
  { name: 'ix_activity_log_timestamp', table: 'activity_logs', columns: ['timestamp'] },
];

/**
 * The job tables' indexes, for job tables that existed before JobTablesAndConstraints (which
 * creates them with these on a new database): built concurrently when missing, and left in
 * place by down() (the table keeps its rows, and its lookups want them either way).
 */
const ADOPTED_JOB_TABLE_INDEXES: IndexDefinition[] = [
  { name: 'ix_validation_job_status', table: 'validation_jobs', columns: ['status'] },
  { name: 'ix_validation_job_crawl_job_id', table: 'validation_jobs', columns: ['crawl_job_id'] },
  { name: 'ix_export_job_status', table: 'export_jobs', columns: ['status'] },
  { name: 'ix_export_job_user_id', table: 'export_jobs', columns: ['user_id'] },
  { name: 'ix_export_job_crawl_job_id', table: 'export_jobs', columns: ['crawl_job_id'] },
];

const RESERVED = [...INDEXES, ...ADOPTED_JOB_TABLE_INDEXES].map((index) => index.name);

/** The name PostgreSQL gives `UNIQUE ("email")`, which is what down() restores. */
const LEGACY_EMAIL_CONSTRAINT = 'profiles_email_key';

export class IndexExistingTables1731542400002 implements PixCrawlerMigration {
  name = 'IndexExistingTables1731542400002';
  transaction = false;
  readonly rerunnable = true;
  readonly creates = INDEXES.map(({ table, name }) => ({ kind: 'index' as const, table, name }));

  public async up(queryRunner: QueryRunner): Promise<void> {
    assertOutsideTransaction(queryRunner, this.name);
    await applyMigrationTimeouts(queryRunner, { transactional: false });
    try {
      for (const index of INDEXES) {
        await createIndexConcurrently(queryRunner, index, { reserved: RESERVED });
      }
      for (const index of ADOPTED_JOB_TABLE_INDEXES) {
        // (Where the table does not exist yet, `plan` is planning JobTablesAndConstraints'
        // CREATE TABLE, which makes these indexes with it.)
        if (!(await queryRunner.hasTable(index.table))) continue;
        await createIndexConcurrently(queryRunner, index, { reserved: RESERVED });
      }
      for (const name of await uniqueConstraintsOnColumn(queryRunner, 'profiles', 'email')) {
        // Drops the constraint's own index with it; ix_profiles_email already guards uniqueness.
        await queryRunner.query(`ALTER TABLE "profiles" DROP CONSTRAINT ${quoteIdentifier(name)}`);
      }
    } finally {
      await resetMigrationTimeouts(queryRunner);
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    assertOutsideTransaction(queryRunner, this.name);
    await applyMigrationTimeouts(queryRunner, { transactional: false });
    try {
      if ((await uniqueConstraintsOnColumn(queryRunner, 'profiles', 'email')).length === 0) {
        // Build the constraint's index concurrently, then attach it: no long lock on profiles.
        if ((await indexState(queryRunner, LEGACY_EMAIL_CONSTRAINT)) !== 'missing') {
          await dropIndexConcurrently(queryRunner, LEGACY_EMAIL_CONSTRAINT);
        }
        // Built, never adopted: the only twin there is, ix_profiles_email, is about to go.
        await createIndexConcurrently(
          queryRunner,
          { name: LEGACY_EMAIL_CONSTRAINT, table: 'profiles', columns: ['email'], unique: true },
          { adopt: false },
        );
        await queryRunner.query(
          `ALTER TABLE "profiles" ADD CONSTRAINT ${quoteIdentifier(LEGACY_EMAIL_CONSTRAINT)} UNIQUE USING INDEX ${quoteIdentifier(LEGACY_EMAIL_CONSTRAINT)}`,
        );
      }
      for (const index of [...INDEXES].reverse()) {
        await releaseIndex(queryRunner, index.name);
      }
    } finally {
      await resetMigrationTimeouts(queryRunner);
    }
  }
}
