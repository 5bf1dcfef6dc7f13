import type { QueryRunner } from 'typeorm';
import { durationSetting } from '../settings';
import { quoteIdentifier, quoteLiteral } from '../sql/quote';

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

/** An index as the catalog holds it: what createIndexConcurrently compares. */
interface LiveIndex {
  name: string;
  unique: boolean;
  valid: boolean;
  partial: boolean;
  /** Key columns in order; an expression makes the index no twin of anything. */
  columns: Array<string | null>;
  comment: string | null;
}

const LIVE_INDEX_SQL = `
  SELECT c.relname AS name, i.indisunique AS unique, i.indisvalid AS valid,
         i.indpred IS NOT NULL AS partial, obj_description(c.oid, 'pg_class') AS comment,
         ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
                 LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE k.position <= i.indnkeyatts ORDER BY k.position) AS columns
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
   WHERE c.relnamespace = current_schema()::regnamespace AND am.amname = 'btree'`;

async function liveIndex(queryRunner: QueryRunner, name: string): Promise<LiveIndex | undefined> {
  const rows: LiveIndex[] = await queryRunner.query(`${LIVE_INDEX_SQL} AND c.relname = $1`, [name]);
  return rows[0];
}

/** Same columns, uniqueness and partiality (a predicate's text is the migration's own). */
const sameIndex = (live: LiveIndex, index: IndexDefinition) =>
  live.unique === (index.unique ?? false) &&
  live.partial === (index.where !== undefined) &&
  live.columns.length === index.columns.length &&
  live.columns.every((column, i) => column === index.columns[i]);

/**
 * A valid plain btree index on the same table with this definition under another name, that
 * backs no constraint and is not one the caller makes itself (`reserved`).
 */
async function twinIndex(
  queryRunner: QueryRunner,
  index: IndexDefinition,
  reserved: readonly string[],
): Promise<LiveIndex | undefined> {
  if (index.where !== undefined) return undefined;
  const rows: LiveIndex[] = await queryRunner.query(
    `${LIVE_INDEX_SQL} AND i.indrelid = to_regclass($1) AND i.indisvalid AND i.indpred IS NULL
        AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
        AND c.relname <> ALL($2::text[])
      ORDER BY c.relname`,
    [index.table, reserved],
  );
  return rows.find((row) => sameIndex(row, index));
}

/** The name an index is built under while one of another definition still holds its name. */
const swapName = (name: string) => `${name.slice(0, 58)}_swap`;

async function renameIndex(queryRunner: QueryRunner, from: string, to: string): Promise<void> {
  await queryRunner.query(`ALTER INDEX ${quoteIdentifier(from)} RENAME TO ${quoteIdentifier(to)}`);
}

export interface CreateIndexOptions {
  /**
   * Take a valid index with this definition under another name (renamed: catalog only, and
   * given its name back on revert by releaseIndex) instead of building one. Default true.
   */
  adopt?: boolean;
  /** Names the caller makes itself: never taken as another index's twin. */
  reserved?: readonly string[];
}

/**
 * CREATE INDEX CONCURRENTLY, idempotent and self-repairing, with the least work the catalog
 * allows:
 * - a valid index of that name and definition is kept;
 * - a valid index of that definition under another name is renamed (catalog only);
 * - a valid index of that name but another definition (PixCrawler's Alembic 001 made
 *   ix_profiles_email a plain index where SPEC's is unique) is replaced: the new one is built
 *   concurrently under a temporary name first, then the old one dropped concurrently and the new
 *   one renamed, so the table is never without it;
 * - an INVALID one (left by a build that was killed or failed) is dropped and rebuilt, which
 *   `IF NOT EXISTS` alone would not do.
 * Must run outside a transaction.
 *
 * lock_timeout is lifted for the build: a concurrent build holds only SHARE UPDATE EXCLUSIVE,
 * which blocks no reader or writer, so waiting out old transactions harms nobody, while giving up
 * would leave an invalid index behind.
 */
export async function createIndexConcurrently(
  queryRunner: QueryRunner,
  index: IndexDefinition,
  { adopt = true, reserved = [] }: CreateIndexOptions = {},
): Promise<void> {
  const found = await liveIndex(queryRunner, index.name);
  if (found?.valid && sameIndex(found, index)) return;
  if (found?.valid) {
    const swap = swapName(index.name);
    await createIndexConcurrently(queryRunner, { ...index, name: swap }, { adopt: false });
    await dropIndexConcurrently(queryRunner, index.name);
    await renameIndex(queryRunner, swap, index.name);
    return;
  }
  if (!found && adopt) {
    // A replacement killed between its drop and its rename: only the rename is left to do.
    const swap = await liveIndex(queryRunner, swapName(index.name));
    if (swap?.valid && sameIndex(swap, index)) {
      await renameIndex(queryRunner, swap.name, index.name);
      return;
    }
    const twin = await twinIndex(queryRunner, index, [...reserved, index.name]);
    if (twin) {
      await renameIndex(queryRunner, twin.name, index.name);
      await queryRunner.query(
        `COMMENT ON INDEX ${quoteIdentifier(index.name)} IS ${adoptedComment(twin.name)}`,
      );
      return;
    }
  }
  await queryRunner.query('SET lock_timeout = 0');
  try {
    if (found) {
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

/**
 * The inverse of createIndexConcurrently: an index it adopted under another name gets that name
 * back; any other is dropped concurrently.
 */
export async function releaseIndex(queryRunner: QueryRunner, name: string): Promise<void> {
  const former = formerName((await liveIndex(queryRunner, name))?.comment ?? null);
  if (former === undefined) {
    await dropIndexConcurrently(queryRunner, name);
    return;
  }
  await queryRunner.query(`COMMENT ON INDEX ${quoteIdentifier(name)} IS NULL`);
  await renameIndex(queryRunner, name, former);
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

/** A constraint a migration makes: its table, name and definition as SQL. */
export interface ConstraintDefinition {
  table: string;
  name: string;
  /** `FOREIGN KEY ("a") REFERENCES "t"("id") ON DELETE … ON UPDATE …` or `CHECK (…)`. */
  definition: string;
}

export interface ForeignKeyParts {
  columns: string[];
  referencedTable: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

const QUOTED_LIST = (list: string) =>
  list.split(',').map((column) => column.trim().replace(/^"|"$/g, ''));

/** The parts of a `FOREIGN KEY (…) REFERENCES "t"(…) ON DELETE … ON UPDATE …` definition. */
export function foreignKeyParts(definition: string): ForeignKeyParts | undefined {
  const match =
    /^FOREIGN KEY \(([^)]*)\) REFERENCES "([^"]+)"\(([^)]*)\)(?: ON DELETE (CASCADE|SET NULL|SET DEFAULT|RESTRICT|NO ACTION))?(?: ON UPDATE (CASCADE|SET NULL|SET DEFAULT|RESTRICT|NO ACTION))?$/.exec(
      definition,
    );
  if (!match) return undefined;
  return {
    columns: QUOTED_LIST(match[1]),
    referencedTable: match[2],
    referencedColumns: QUOTED_LIST(match[3]),
    onDelete: match[4] ?? 'NO ACTION',
    onUpdate: match[5] ?? 'NO ACTION',
  };
}

/**
 * The foreign keys of a table with exactly this definition (columns, target, rules), whatever
 * their names, by name: whether each is validated.
 */
export async function foreignKeysLike(
  queryRunner: QueryRunner,
  table: string,
  fk: ForeignKeyParts,
): Promise<Array<{ name: string; validated: boolean }>> {
  const action = `CASE %s WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
                          WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END`;
  const columnsOf = (keys: string, relation: string) =>
    `ARRAY(SELECT a.attname::text FROM unnest(con.${keys}) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = con.${relation} AND a.attnum = k.attnum
            ORDER BY k.position)`;
  return queryRunner.query(
    `SELECT con.conname AS name, con.convalidated AS validated
       FROM pg_constraint con
      WHERE con.conrelid = to_regclass($1) AND con.contype = 'f'
        AND con.confrelid = to_regclass($3)
        AND ${columnsOf('conkey', 'conrelid')} = $2::text[]
        AND ${columnsOf('confkey', 'confrelid')} = $4::text[]
        AND ${action.replace('%s', 'con.confdeltype')} = $5
        AND ${action.replace('%s', 'con.confupdtype')} = $6
      ORDER BY con.conname`,
    [table, fk.columns, fk.referencedTable, fk.referencedColumns, fk.onDelete, fk.onUpdate],
  );
}

/** Whether a table has a constraint of this name, and whether it is validated. */
async function constraintState(
  queryRunner: QueryRunner,
  table: string,
  name: string,
): Promise<'missing' | 'valid' | 'not valid'> {
  const rows: { validated: boolean }[] = await queryRunner.query(
    `SELECT convalidated AS validated FROM pg_constraint
      WHERE conrelid = to_regclass($1) AND conname = $2`,
    [table, name],
  );
  if (rows.length === 0) return 'missing';
  return rows[0].validated ? 'valid' : 'not valid';
}

/*
 * What a migration adopted, it gives back on revert. A constraint or index with SPEC's
 * definition under another name is renamed (catalog only) rather than built again, and its
 * comment records the name it had, so down() renames it back instead of dropping what the
 * database had before the upgrade (the foreign keys PixCrawler's Alembic 001 made, say).
 */
const ADOPTED = 'pixcrawler-db adopted this; its name was ';
const adoptedComment = (former: string) => quoteLiteral(`${ADOPTED}${former}`);
const formerName = (comment: string | null) =>
  comment?.startsWith(ADOPTED) ? comment.slice(ADOPTED.length) : undefined;

/**
 * The constraint exists afterwards, in the cheapest way there is: kept when a constraint of
 * this name exists; for a foreign key, one with the same definition under another name is
 * renamed (catalog only, and a validated one stays validated: no scan); anything else is added
 * NOT VALID (ValidateConstraints validates it without blocking writes).
 */
export async function ensureConstraint(
  queryRunner: QueryRunner,
  { table, name, definition }: ConstraintDefinition,
): Promise<void> {
  if ((await constraintState(queryRunner, table, name)) !== 'missing') return;
  const fk = foreignKeyParts(definition);
  const twin = fk ? (await foreignKeysLike(queryRunner, table, fk))[0] : undefined;
  if (twin) {
    await queryRunner.query(
      `ALTER TABLE ${quoteIdentifier(table)} RENAME CONSTRAINT ${quoteIdentifier(twin.name)} TO ${quoteIdentifier(name)}`,
    );
    await queryRunner.query(
      `COMMENT ON CONSTRAINT ${quoteIdentifier(name)} ON ${quoteIdentifier(table)} IS ${adoptedComment(twin.name)}`,
    );
    return;
  }
  // squawk: adding-foreign-key-constraint / constraint-missing-not-valid are satisfied by
  // NOT VALID; ValidateConstraints validates them without blocking writes.
  await queryRunner.query(
    `ALTER TABLE ${quoteIdentifier(table)} ADD CONSTRAINT ${quoteIdentifier(name)} ${definition} NOT VALID`,
  );
}

/** The name a constraint had before a migration adopted it, or undefined (the migration made it). */
export async function adoptedConstraint(
  queryRunner: QueryRunner,
  table: string,
  name: string,
): Promise<string | undefined> {
  const rows: { comment: string | null }[] = await queryRunner.query(
    `SELECT obj_description(oid, 'pg_constraint') AS comment FROM pg_constraint
      WHERE conrelid = to_regclass($1) AND conname = $2`,
    [table, name],
  );
  return formerName(rows[0]?.comment ?? null);
}

/** The inverse of ensureConstraint: an adopted constraint gets its name back; ours is dropped. */
export async function releaseConstraint(
  queryRunner: QueryRunner,
  { table, name }: Pick<ConstraintDefinition, 'table' | 'name'>,
): Promise<void> {
  const former = await adoptedConstraint(queryRunner, table, name);
  if (former === undefined) {
    await queryRunner.query(
      `ALTER TABLE ${quoteIdentifier(table)} DROP CONSTRAINT IF EXISTS ${quoteIdentifier(name)}`,
    );
    return;
  }
  await queryRunner.query(
    `COMMENT ON CONSTRAINT ${quoteIdentifier(name)} ON ${quoteIdentifier(table)} IS NULL`,
  );
  await queryRunner.query(
    `ALTER TABLE ${quoteIdentifier(table)} RENAME CONSTRAINT ${quoteIdentifier(name)} TO ${quoteIdentifier(former)}`,
  );
}

/**
 * Whether the rule of a constraint ValidateConstraints validates is enforced for every row
 * already, and by which constraint: SPEC's by name, or (a foreign key) one with its definition
 * under another name that an earlier migration renames to SPEC's (plan never runs that rename,
 * so it asks by definition to decide as migrate will).
 */
export async function enforcingConstraint(
  queryRunner: QueryRunner,
  { table, name, definition }: ConstraintDefinition,
): Promise<{ name: string; validated: boolean } | undefined> {
  const state = await constraintState(queryRunner, table, name);
  if (state !== 'missing') return { name, validated: state === 'valid' };
  const fk = foreignKeyParts(definition);
  return fk ? (await foreignKeysLike(queryRunner, table, fk))[0] : undefined;
}
