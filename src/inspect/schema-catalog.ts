import type { DataSource } from 'typeorm';
import {
  normalizeDefault,
  type CheckShape,
  type ColumnShape,
  type ForeignKeyShape,
  type IndexShape,
  type PrimaryKeyShape,
  type ReferentialAction,
  type TableShape,
  type UniqueShape,
} from './schema-shape';

/**
 * The live schema as PostgreSQL's catalog describes it: what the guide's verification script
 * asks psql for (`\dt`, `\d table`, `\di`), read from pg_catalog so that it works on PostgreSQL.
 * (The guide's foreign-key query filters on `referenced_table_name`, a MySQL column: on
 * PostgreSQL it returns nothing. Foreign keys live in pg_constraint.)
 */

type Queryable = Pick<DataSource, 'query'>;

/**
 * Alembic's bookkeeping table on a database PixCrawler's Python side migrated. The Python side
 * reads it, so nothing here changes it, and `verify` does not count it as part of the schema.
 */
export const ALEMBIC_VERSION_TABLE = 'alembic_version';

/** The schema the connection works in: the DataSource's `schema` option, else current_schema(). */
export async function currentSchema(dataSource: DataSource): Promise<string> {
  const configured = (dataSource.options as { schema?: string }).schema;
  if (configured) return configured;
  const [row]: { name: string }[] = await dataSource.query('SELECT current_schema() AS name');
  return row.name;
}

const TABLES_SQL = `
  SELECT c.relname AS table
    FROM pg_class c
   WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')
   ORDER BY c.relname`;

const COLUMNS_SQL = `
  SELECT c.relname AS table,
         a.attname AS name,
         format_type(a.atttypid, a.atttypmod) AS type,
         NOT a.attnotnull AS nullable,
         pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')
     AND a.attnum > 0 AND NOT a.attisdropped
   ORDER BY c.relname, a.attnum`;

/**
 * Primary keys, unique constraints, foreign keys and checks. Column lists keep their order
 * (conkey WITH ORDINALITY); confdeltype/confupdtype are single letters, spelled out here.
 */
const CONSTRAINTS_SQL = `
  SELECT t.relname AS table,
         con.conname AS name,
         con.contype AS kind,
         con.convalidated AS validated,
         pg_get_constraintdef(con.oid) AS definition,
         ARRAY(SELECT a.attname::text
                 FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                ORDER BY k.position) AS columns,
         ref.relname AS referenced_table,
         ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                ORDER BY k.position) AS referenced_columns,
         CASE con.confdeltype
              WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
              WHEN 'r' THEN 'RESTRICT' WHEN 'a' THEN 'NO ACTION' END AS on_delete,
         CASE con.confupdtype
              WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
              WHEN 'r' THEN 'RESTRICT' WHEN 'a' THEN 'NO ACTION' END AS on_update
    FROM pg_constraint con
    JOIN pg_class t ON t.oid = con.conrelid
    LEFT JOIN pg_class ref ON ref.oid = con.confrelid
   WHERE t.relnamespace = to_regnamespace($1) AND con.contype IN ('p', 'u', 'f', 'c')
   ORDER BY t.relname, con.conname`;

/**
 * Indexes that do not back a primary key or unique constraint (those are compared as the
 * constraints they are). indisvalid is false for an interrupted CREATE INDEX CONCURRENTLY.
 */
const INDEXES_SQL = `
  SELECT t.relname AS table,
         ic.relname AS name,
         i.indisunique AS unique,
         i.indisvalid AS valid,
         am.amname AS method,
         pg_get_expr(i.indpred, i.indrelid) AS where,
         ARRAY(SELECT CASE WHEN k.attnum = 0 THEN pg_get_indexdef(i.indexrelid, k.position::int, true)
                           ELSE a.attname::text END
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
                 LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE k.position <= i.indnkeyatts
                ORDER BY k.position) AS columns
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_am am ON am.oid = ic.relam
   WHERE t.relnamespace = to_regnamespace($1)
     AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                      WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x'))
   ORDER BY t.relname, ic.relname`;

interface ColumnRow {
  table: string;
  name: string;
  type: string;
  nullable: boolean;
  default: string | null;
}

interface ConstraintRow {
  table: string;
  name: string;
  kind: 'p' | 'u' | 'f' | 'c';
  validated: boolean;
  definition: string;
  columns: string[];
  referenced_table: string | null;
  referenced_columns: string[];
  on_delete: ReferentialAction | null;
  on_update: ReferentialAction | null;
}

interface IndexRow {
  table: string;
  name: string;
  unique: boolean;
  valid: boolean;
  method: string;
  where: string | null;
  columns: string[];
}

/** Every table of the schema with its columns, keys, indexes and checks, by table name. */
export async function readSchemaCatalog(
  db: Queryable,
  schema: string,
): Promise<Map<string, TableShape>> {
  const tables = new Map<string, TableShape>();
  for (const row of (await db.query(TABLES_SQL, [schema])) as { table: string }[]) {
    tables.set(row.table, {
      name: row.table,
      columns: [],
      primaryKey: null,
      foreignKeys: [],
      indexes: [],
      uniques: [],
      checks: [],
    });
  }
  const tableOf = (name: string): TableShape => {
    const table = tables.get(name);
    if (!table) throw new Error(`catalog: table ${name} vanished while it was being read`);
    return table;
  };

  for (const row of (await db.query(COLUMNS_SQL, [schema])) as ColumnRow[]) {
    const column: ColumnShape = {
      name: row.name,
      type: row.type,
      nullable: row.nullable,
      default: normalizeDefault(row.default, row.type),
    };
    tableOf(row.table).columns.push(column);
  }

  for (const row of (await db.query(CONSTRAINTS_SQL, [schema])) as ConstraintRow[]) {
    const table = tableOf(row.table);
    if (row.kind === 'p') {
      const primaryKey: PrimaryKeyShape = { name: row.name, columns: row.columns };
      table.primaryKey = primaryKey;
    } else if (row.kind === 'u') {
      const unique: UniqueShape = { name: row.name, columns: row.columns };
      table.uniques.push(unique);
    } else if (row.kind === 'f') {
      const foreignKey: ForeignKeyShape = {
        name: row.name,
        columns: row.columns,
        referencedTable: row.referenced_table ?? '?',
        referencedColumns: row.referenced_columns,
        onDelete: row.on_delete ?? 'NO ACTION',
        onUpdate: row.on_update ?? 'NO ACTION',
        validated: row.validated,
      };
      table.foreignKeys.push(foreignKey);
    } else {
      const check: CheckShape = {
        name: row.name,
        definition: row.definition,
        validated: row.validated,
      };
      table.checks.push(check);
    }
  }

  for (const row of (await db.query(INDEXES_SQL, [schema])) as IndexRow[]) {
    const index: IndexShape = {
      name: row.name,
      columns: row.columns,
      unique: row.unique,
      method: row.method,
      where: row.where,
      valid: row.valid,
    };
    tableOf(row.table).indexes.push(index);
  }
  return tables;
}
