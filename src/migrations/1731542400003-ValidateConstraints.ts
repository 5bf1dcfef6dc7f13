import type { QueryRunner } from 'typeorm';
import type { PixCrawlerMigration } from './migration-traits';
import { applyMigrationTimeouts, resetMigrationTimeouts } from './lock-safe-ddl';
import { EXISTING_TABLE_CONSTRAINTS } from './1731542400001-JobTablesAndConstraints';

/**
 * Validates the foreign keys and checks that JobTablesAndConstraints added NOT VALID.
 * VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE, which blocks no reader or
 * writer. Each constraint is validated in its own statement outside a transaction, so a run
 * that fails on one (a row that breaks it: run `pixcrawler-db preflight`) keeps the ones already
 * validated, and the next run carries on.
 *
 * squawk (npm run lint:migrations) warns prefer-robust-stmts (statements outside a transaction);
 * kept on purpose: VALIDATE CONSTRAINT on a constraint already valid does nothing, so the
 * migration reruns safely, and outside a transaction each validated constraint stays validated.
 */
export class ValidateConstraints1731542400003 implements PixCrawlerMigration {
  name = 'ValidateConstraints1731542400003';
  transaction = false;
  readonly constrainsExistingRows = true;

  public async up(queryRunner: QueryRunner): Promise<void> {
    await applyMigrationTimeouts(queryRunner, { transactional: false });
    try {
      for (const { table, name } of EXISTING_TABLE_CONSTRAINTS) {
        await queryRunner.query(`ALTER TABLE "${table}" VALIDATE CONSTRAINT "${name}"`);
      }
    } finally {
      await resetMigrationTimeouts(queryRunner);
    }
  }

  /** PostgreSQL cannot un-validate; dropping and re-adding NOT VALID is the exact inverse. */
  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.startTransaction();
    try {
      await applyMigrationTimeouts(queryRunner, { transactional: true });
      for (const { table, name, definition } of EXISTING_TABLE_CONSTRAINTS) {
        await queryRunner.query(`ALTER TABLE "${table}" DROP CONSTRAINT "${name}"`);
        await queryRunner.query(
          `ALTER TABLE "${table}" ADD CONSTRAINT "${name}" ${definition} NOT VALID`,
        );
      }
      await queryRunner.commitTransaction();
    } catch (error) {
      await queryRunner.rollbackTransaction();
      throw error;
    }
  }
}
