import type { TestDatabase } from './test-database';

/**
 * What a finished upgrade must not leave behind, and what "nothing changed" compares: read from
 * the catalogs of a test database.
 */

/** Indexes an interrupted CREATE INDEX CONCURRENTLY left INVALID. */
export async function invalidIndexes(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisvalid ORDER BY 1`,
  );
  return rows.map((row) => row.name);
}

/** Constraints added NOT VALID and never validated. */
export async function notValidConstraints(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT conname AS name FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace AND NOT convalidated ORDER BY 1`,
  );
  return rows.map((row) => row.name);
}

/**
 * Every table, column, constraint and index in the public schema, as comparable text; the
 * migrations bookkeeping table aside (recordedMigrations reads that).
 */
export async function schemaSnapshot(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ item: string }>(`
    SELECT format('table %s', relname) AS item
      FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
       AND relname <> 'migrations'
    UNION ALL
    SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type,
                  is_nullable, column_default)
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'migrations'
    UNION ALL
    SELECT format('constraint %s %s valid=%s', conname, pg_get_constraintdef(oid), convalidated)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
       AND conrelid IS DISTINCT FROM to_regclass('migrations')
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes
     WHERE schemaname = 'public' AND tablename <> 'migrations'
    ORDER BY 1`);
  return rows.map((row) => row.item);
}

/** Row counts of the given tables. */
export async function rowCounts(db: TestDatabase, tables: readonly string[]) {
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const [row] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`);
    counts[table] = Number(row.n);
  }
  return counts;
}

/** Every (table, id) pair, to check that no pre-existing row went missing. */
export async function rowIds(db: TestDatabase, tables: readonly string[]) {
  const ids: Record<string, string> = {};
  for (const table of tables) {
    const [row] = await db.query<{ digest: string }>(
      `SELECT md5(string_agg(id::text, ',' ORDER BY id)) AS digest FROM "${table}"`,
    );
    ids[table] = row.digest;
  }
  return ids;
}

/** Names recorded in the migrations table, in order (empty when it does not exist). */
export async function recordedMigrations(db: TestDatabase): Promise<string[]> {
  const [exists] = await db.query<{ t: string | null }>(`SELECT to_regclass('migrations') AS t`);
  if (!exists.t) return [];
  const rows = await db.query<{ name: string }>('SELECT name FROM migrations ORDER BY id');
  return rows.map((row) => row.name);
}
