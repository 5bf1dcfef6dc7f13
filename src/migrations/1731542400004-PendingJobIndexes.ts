import type { MigrationInterface, QueryRunner } from 'typeorm';
import {
  applyMigrationTimeouts,
  assertOutsideTransaction,
  createIndexConcurrently,
  dropIndexConcurrently,
  resetMigrationTimeouts,
  type IndexDefinition,
} from './lock-safe-ddl';

/**
 * Partial indexes holding only the pending jobs, for claiming (SPEC.md: ix_validation_job_pending,
 * ix_export_job_pending). A claim takes the oldest pending job; without these the planner walks
 * the primary key past every finished job older than it, so every claim costs more with every
 * job ever run. These indexes hold the pending jobs alone: a claim reads one entry whatever the
 * history.
 *
 * Built CONCURRENTLY (the job tables keep taking requests and claims meanwhile), hence
 * `transaction = false`, and idempotent like IndexExistingTables: a rerun keeps a valid index
 * and rebuilds an INVALID one an interrupted build left.
 *
 * squawk (npm run lint:migrations) warns prefer-robust-stmts (no IF NOT EXISTS outside a
 * transaction); kept on purpose: each build is guarded by a catalog lookup (indexState), which
 * also rebuilds an INVALID index that IF NOT EXISTS would keep.
 */
const PENDING = `"status" = 'pending'`;

export const PENDING_JOB_INDEXES: readonly IndexDefinition[] = [
  { name: 'ix_validation_job_pending', table: 'validation_jobs', columns: ['id'], where: PENDING },
  { name: 'ix_export_job_pending', table: 'export_jobs', columns: ['id'], where: PENDING },
];

export class PendingJobIndexes1731542400004 implements MigrationInterface {
  name = 'PendingJobIndexes1731542400004';
  transaction = false;
  readonly rerunnable = true;
  readonly creates = PENDING_JOB_INDEXES.map(({ table, name }) => ({
    kind: 'index' as const,
    table,
    name,
  }));

  public async up(queryRunner: QueryRunner): Promise<void> {
    assertOutsideTransaction(queryRunner, this.name);
    await applyMigrationTimeouts(queryRunner, { transactional: false });
    try {
      for (const index of PENDING_JOB_INDEXES) {
        await createIndexConcurrently(queryRunner, index);
      }
    } finally {
      await resetMigrationTimeouts(queryRunner);
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    assertOutsideTransaction(queryRunner, this.name);
    await applyMigrationTimeouts(queryRunner, { transactional: false });
    try {
      for (const index of [...PENDING_JOB_INDEXES].reverse()) {
        await dropIndexConcurrently(queryRunner, index.name);
      }
    } finally {
      await resetMigrationTimeouts(queryRunner);
    }
  }
}
