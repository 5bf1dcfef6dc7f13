import type { QueryRunner } from 'typeorm';
import { durationSetting } from '../settings';
import { quoteIdentifier } from '../sql/quote';

/**
 * DDL helpers for migrations that run against large, live tables. They follow what
 * strong_migrations, squawk and GitLab's migration helpers enforce: take strong locks only for
 * a moment, build indexes concurrently, and let a re-run repair what an interrupted run left.
 */

/** How long a migration statement may wait for a lock before giving up (and being retried). */
export function migrationLockTimeout(env: NodeJS.ProcessEnv = process.env): string {
  return durationSetting('PIXCRAWLER_LOCK_TIMEOUT', '5s', env);
}

/**
 * A short lock_timeout, so a migration queued behind a long transaction gives up quickly instead
 * of making every other session queue behind it; and no statement_timeout, so a long index
 * build or validation (which blocks no writer) is not cut off by a server-wide default.
 * In a transactional migration the settings end with its transaction (SET LOCAL).
 */
export async function applyMigrationTimeouts(
  queryRunner: QueryRunner,
  { transactional }: { transactional: boolean },
): Promise<void> {
  const scope = transactional ? 'LOCAL ' : '';
  await queryRunner.query(`SET ${scope}lock_timeout = '${migrationLockTimeout()}'`);
  await queryRunner.query(`SET ${scope}statement_timeout = 0`);
}

/** Restores the session defaults a non-transactional migration changed. */
export async function resetMigrationTimeouts(queryRunner: QueryRunner): Promise<void> {
  await queryRunner.query('RESET lock_timeout');
  await queryRunner.query('RESET statement_timeout');
}

/** The state of an index by name: missing, valid, or invalid (an interrupted concurrent build). */
export async function indexState(
  queryRunner: QueryRunner,
  name: string,
): Promise<'missing' | 'valid' | 'invalid'> {
  const rows: { valid: boolean }[] = await queryRunner.query(
    `SELECT i.indisvalid AS valid
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`,
    [name],
  );
  if (rows.length === 0) return 'missing';
  return rows[0].valid ? 'valid' : 'invalid';
}

export interface IndexDefinition {
  name: string;
  table: string;
  columns: string[];
  unique?: boolean;
  /** A partial index's predicate, as SQL (`"status" = 'pending'`). */
  where?: string;
}

/**
 * CREATE INDEX CONCURRENTLY, idempotent and self-repairing: a valid index of that name is kept;
 * an INVALID one (left by a build that was killed or failed) is dropped and rebuilt, which
 * `IF NOT EXISTS` alone would not do. Must run outside a transaction.
 *
 * lock_timeout is lifted for the build: a concurrent build holds only SHARE UPDATE EXCLUSIVE,
 * which blocks no reader or writer, so waiting out old transactions harms nobody, while giving up
 * would leave an invalid index behind.
 */
export async function createIndexConcurrently(
  queryRunner: QueryRunner,
  index: IndexDefinition,
): Promise<void> {
  const state = await indexState(queryRunner, index.name);
  if (state === 'valid') return;
  await queryRunner.query('SET lock_timeout = 0');
  try {
    if (state === 'invalid') {
      await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdentifier(index.name)}`);
    }
    const columns = index.columns.map((column) => `${quoteIdentifier(column)}`).join(', ');
    await queryRunner.query(
      `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${quoteIdentifier(index.name)} ON ${quoteIdentifier(index.table)} (${columns})` +
        (index.where ? ` WHERE ${index.where}` : ''),
    );
  } finally {
    await queryRunner.query(`SET lock_timeout = '${migrationLockTimeout()}'`);
  }
}

/** DROP INDEX CONCURRENTLY IF EXISTS: never blocks readers or writers. Outside a transaction. */
export async function dropIndexConcurrently(queryRunner: QueryRunner, name: string): Promise<void> {
  await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdentifier(name)}`);
}

/** The name of a table's primary key constraint, whatever created it. */
export async function primaryKeyName(queryRunner: QueryRunner, table: string): Promise<string> {
  const rows: { name: string }[] = await queryRunner.query(
    `SELECT conname AS name FROM pg_constraint
      WHERE conrelid = to_regclass($1) AND contype = 'p'`,
    [table],
  );
  if (rows.length === 0) {
    throw new Error(`Table "${table}" has no primary key; the schema contract requires one.`);
  }
  return rows[0].name;
}

/** Renames a table's primary key (metadata only: a brief lock, no scan). */
export async function renamePrimaryKey(
  queryRunner: QueryRunner,
  table: string,
  name: string,
): Promise<void> {
  const current = await primaryKeyName(queryRunner, table);
  if (current !== name) {
    await queryRunner.query(
      `ALTER TABLE ${quoteIdentifier(table)} RENAME CONSTRAINT ${quoteIdentifier(current)} TO ${quoteIdentifier(name)}`,
    );
  }
}

/** Names of the UNIQUE constraints on exactly this one column, whatever created them. */
export async function uniqueConstraintsOnColumn(
  queryRunner: QueryRunner,
  table: string,
  column: string,
): Promise<string[]> {
  const rows: { name: string }[] = await queryRunner.query(
    `SELECT c.conname AS name
       FROM pg_constraint c
       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
      WHERE c.conrelid = to_regclass($1) AND c.contype = 'u'
        AND cardinality(c.conkey) = 1 AND a.attname = $2`,
    [table, column],
  );
  return rows.map((row) => row.name);
}

/**
 * The foreign keys on exactly these columns of a table (in this order) other than `keep`,
 * whatever created them: an ORM's `<table>_<column>_<target>_id_fk` beside ours. Found by
 * columns, not through `keep`, so the answer does not depend on `keep` existing yet.
 */
export async function otherForeignKeysOn(
  queryRunner: QueryRunner,
  table: string,
  columns: readonly string[],
  keep: string,
): Promise<string[]> {
  const rows: { name: string }[] = await queryRunner.query(
    `SELECT con.conname AS name
       FROM pg_constraint con
      WHERE con.conrelid = to_regclass($1) AND con.contype = 'f' AND con.conname <> $3
        AND ARRAY(SELECT a.attname::text
                    FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                   ORDER BY k.position) = $2::text[]
      ORDER BY con.conname`,
    [table, columns, keep],
  );
  return rows.map((row) => row.name);
}

/**
 * TypeORM's `migration:revert` wraps `down()` in a transaction even when the migration says
 * `transaction = false` (only `-t none` stops it), and CONCURRENTLY fails inside one half way.
 * Refuse up front with the two ways that work, before anything changes.
 */
export function assertOutsideTransaction(queryRunner: QueryRunner, migration: string): void {
  if (queryRunner.isTransactionActive) {
    throw new Error(
      `${migration} builds and drops indexes CONCURRENTLY, which PostgreSQL does not allow inside ` +
        'a transaction. Revert it with `npx pixcrawler-db revert`, or with ' +
        '`typeorm migration:revert -t none`. Nothing was changed.',
    );
  }
}
