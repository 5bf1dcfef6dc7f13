import type { QueryRunner } from 'typeorm';
import type { PixCrawlerMigration } from './migration-traits';
import {
  adoptedConstraint,
  applyMigrationTimeouts,
  enforcingConstraint,
  foreignKeyParts,
  otherForeignKeysOn,
  resetMigrationTimeouts,
} from './lock-safe-ddl';
import {
  EXISTING_TABLE_CONSTRAINTS,
  JOB_TABLE_CONSTRAINTS,
} from './1731542400001-JobTablesAndConstraints';
import { quoteIdentifier } from '../sql/quote';

/**
 * Validates the foreign keys and checks that JobTablesAndConstraints added NOT VALID.
 * VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE, which blocks no reader or
 * writer.
 *
 * Once a foreign key is validated, any other foreign key on the same column is dropped: a
 * database the web app's ORM created has its own (`projects_user_id_profiles_id_fk`, ON DELETE
 * NO ACTION), which would make a delete fail instead of cascading. Dropping it only after ours
 * is valid keeps the column guarded at every moment; the drop takes a brief ACCESS EXCLUSIVE
 * lock on the table and the one it references. down() does not bring such keys back: the
 * reverted schema is the legacy one, which has no foreign keys. A constraint valid already is
 * not scanned again: the job tables' on a new database, and a foreign key JobTablesAndConstraints
 * adopted by renaming. The job tables' constraints are validated here too where those tables
 * were adopted (added NOT VALID); down() leaves them validated, and JobTablesAndConstraints'
 * down() removes them. Each constraint is validated in its own statement outside a transaction, so a run
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
      for (const constraint of [...EXISTING_TABLE_CONSTRAINTS, ...JOB_TABLE_CONSTRAINTS]) {
        const { table, name, definition } = constraint;
        // A job table `plan` has not created (it plans JobTablesAndConstraints' CREATE TABLE,
        // whose constraints are valid from the start).
        if (!(await queryRunner.hasTable(table))) continue;
        // Valid already (the job tables' on a new database; a foreign key adopted by renaming):
        // nothing to scan.
        const enforcing = await enforcingConstraint(queryRunner, constraint);
        if (!enforcing?.validated) {
          await queryRunner.query(
            `ALTER TABLE ${quoteIdentifier(table)} VALIDATE CONSTRAINT ${quoteIdentifier(name)}`,
          );
        }
        const fk = foreignKeyParts(definition);
        if (!fk) continue;
        const kept = enforcing?.name ?? name;
        for (const other of await otherForeignKeysOn(queryRunner, table, fk.columns, kept)) {
          await queryRunner.query(
            `ALTER TABLE ${quoteIdentifier(table)} DROP CONSTRAINT ${quoteIdentifier(other)}`,
          );
        }
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
        // Adopted valid from the database as it was (renamed, not added): it stays valid.
        if ((await adoptedConstraint(queryRunner, table, name)) !== undefined) continue;
        await queryRunner.query(
          `ALTER TABLE ${quoteIdentifier(table)} DROP CONSTRAINT IF EXISTS ${quoteIdentifier(name)}`,
        );
        await queryRunner.query(
          `ALTER TABLE ${quoteIdentifier(table)} ADD CONSTRAINT ${quoteIdentifier(name)} ${definition} NOT VALID`,
        );
      }
      await queryRunner.commitTransaction();
    } catch (error) {
      await queryRunner.rollbackTransaction();
      throw error;
    }
  }
}
