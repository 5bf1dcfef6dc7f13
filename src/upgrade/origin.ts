import type { DataSource } from 'typeorm';
import { ALEMBIC_VERSION_TABLE } from '../inspect/schema-catalog';
import { quoteIdentifier } from '../sql/quote';
import { existingTables, LEGACY_TABLE_NAMES, PIXCRAWLER_TABLE_NAMES } from './legacy-schema';

/**
 * Which tool made a database, as far as its catalog tells: what `status`, `plan` and `migrate`
 * say they found before they say what they will do. The adoption itself never depends on this
 * (it judges the tables by what they hold, upgrade/adoption.ts); the origin only names what the
 * operator is looking at, and the Alembic revision the Python side recorded.
 *
 * - managed: this tool's migrations table records migrations;
 * - alembic: PixCrawler's Python side brought it to a revision (`alembic_version` holds it);
 * - orm: the web app's ORM made it (timestamps without time zone, its `…_fk` foreign keys);
 * - legacy: the five tables as they were before Alembic 001 ("The database before this change");
 * - empty: none of the seven tables.
 */
export type DatabaseOrigin =
  | { kind: 'managed'; applied: number; alembicRevision?: string }
  | { kind: 'alembic'; revision: string }
  | { kind: 'orm' }
  | { kind: 'legacy' }
  | { kind: 'empty' };

export { ALEMBIC_VERSION_TABLE };

type Query = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/** The revision(s) `alembic_version` holds (several heads joined by ', '), or undefined. */
export async function alembicRevision(query: Query): Promise<string | undefined> {
  const [table] = await query<{ exists: boolean }>(
    `SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL AS exists`,
    [ALEMBIC_VERSION_TABLE],
  );
  if (!table.exists) return undefined;
  const rows = await query<{ version: string }>(
    `SELECT version_num::text AS version FROM ${ALEMBIC_VERSION_TABLE} ORDER BY 1`,
  );
  return rows.length === 0 ? '(none)' : rows.map((row) => row.version).join(', ');
}

/** Rows of this tool's migrations table; 0 when it does not exist. */
async function recordedMigrationCount(query: Query, table: string): Promise<number> {
  const [found] = await query<{ exists: boolean }>(
    `SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL AS exists`,
    [table],
  );
  if (!found.exists) return 0;
  const [{ count }] = await query<{ count: string }>(
    `SELECT count(*) AS count FROM ${quoteIdentifier(table)}`,
  );
  return Number(count);
}

export async function detectOrigin(dataSource: DataSource): Promise<DatabaseOrigin> {
  const query: Query = (sql, params) => dataSource.query(sql, params);
  const revision = await alembicRevision(query);
  const migrationsTable = dataSource.options.migrationsTableName ?? 'migrations';
  const applied = await recordedMigrationCount(query, migrationsTable);
  if (applied > 0) {
    return { kind: 'managed', applied, ...(revision ? { alembicRevision: revision } : {}) };
  }
  const tables = await existingTables(query, PIXCRAWLER_TABLE_NAMES);
  if (tables.length === 0) return { kind: 'empty' };
  if (revision) return { kind: 'alembic', revision };
  const [{ orm }] = await query<{ orm: boolean }>(
    `SELECT EXISTS (
              SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)
                 AND a.attnum > 0 AND NOT a.attisdropped
                 AND a.atttypid = 'timestamp without time zone'::regtype)
         OR EXISTS (
              SELECT 1 FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
               WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)
                 AND con.contype = 'f' AND con.conname LIKE '%\\_fk') AS orm`,
    [LEGACY_TABLE_NAMES],
  );
  return orm ? { kind: 'orm' } : { kind: 'legacy' };
}
