import type { DataSource, EntityMetadata } from 'typeorm';
import { withoutNotValid } from './schema-compare';
import {
  normalizeDefault,
  type ColumnShape,
  type ReferentialAction,
  type TableShape,
} from './schema-shape';
import { quoteIdentifier } from '../sql/quote';

/**
 * The schema the entities describe, from the DataSource's built metadata (`initialize()` or
 * `buildMetadatas()` builds it): the same shape schema-catalog.ts reads from the database.
 */
export function expectedSchema(dataSource: DataSource): Map<string, TableShape> {
  const tables = new Map<string, TableShape>();
  for (const metadata of dataSource.entityMetadatas) {
    if (metadata.tableType === 'view' || metadata.tableType === 'entity-child') continue;
    tables.set(metadata.tableName, expectedTable(dataSource, metadata));
  }
  return tables;
}

type ColumnMetadata = EntityMetadata['columns'][number];

function expectedTable(dataSource: DataSource, metadata: EntityMetadata): TableShape {
  const naming = dataSource.namingStrategy;
  const primaryColumns = metadata.primaryColumns.map((column) => column.databaseName);
  return {
    name: metadata.tableName,
    columns: metadata.columns.map((column) => expectedColumn(dataSource, column)),
    primaryKey:
      primaryColumns.length === 0
        ? null
        : {
            name:
              metadata.primaryColumns[0].primaryKeyConstraintName ??
              naming.primaryKeyName(metadata.tableName, primaryColumns),
            columns: primaryColumns,
          },
    foreignKeys: metadata.foreignKeys.map((foreignKey) => ({
      name: foreignKey.name,
      columns: foreignKey.columnNames,
      referencedTable: foreignKey.referencedEntityMetadata.tableName,
      referencedColumns: foreignKey.referencedColumnNames,
      onDelete: (foreignKey.onDelete ?? 'NO ACTION') as ReferentialAction,
      onUpdate: (foreignKey.onUpdate ?? 'NO ACTION') as ReferentialAction,
    })),
    indexes: metadata.indices.map((index) => ({
      name: index.name,
      columns: index.columns.map((column) => column.databaseName),
      unique: index.isUnique,
      method: index.isSpatial ? 'gist' : 'btree',
      where: index.where ?? null,
    })),
    uniques: metadata.uniques.map((unique) => ({
      name: unique.name,
      columns: unique.columns.map((column) => column.databaseName),
    })),
    checks: metadata.checks.map((check) => ({ name: check.name, definition: check.expression })),
  };
}

function expectedColumn(dataSource: DataSource, column: ColumnMetadata): ColumnShape {
  const baseType = dataSource.driver.normalizeType(column);
  return {
    name: column.databaseName,
    type: withModifiers(baseType, column),
    nullable: column.isNullable,
    default: expectedDefault(dataSource, column, baseType),
  };
}

/** `character varying` + length 255 → `character varying(255)`, as format_type() spells it. */
function withModifiers(type: string, column: ColumnMetadata): string {
  if (column.length) return `${type}(${column.length})`;
  if (column.precision !== undefined && column.precision !== null) {
    return column.scale !== undefined && column.scale !== null
      ? `${type}(${column.precision},${column.scale})`
      : `${type}(${column.precision})`;
  }
  return type;
}

function expectedDefault(
  dataSource: DataSource,
  column: ColumnMetadata,
  type: string,
): string | null {
  if (column.isGenerated && column.generationStrategy === 'increment') return 'nextval(sequence)';
  if (column.default === undefined || column.default === null) return null;
  // Numbers compare as numbers; the driver quotes them ('0'), PostgreSQL prints them bare.
  if (typeof column.default === 'number') return String(column.default);
  return normalizeDefault(dataSource.driver.normalizeDefault(column), type);
}

/** The expected definitions in PostgreSQL's own spelling, by `table.name`. */
export interface CanonicalSpellings {
  /** Check constraints, as `pg_get_constraintdef` prints them. */
  checks: Map<string, string>;
  /** Partial indexes' predicates, as `pg_get_expr(indpred)` prints them. */
  indexPredicates: Map<string, string>;
}

/**
 * The expected check constraints and partial-index predicates as PostgreSQL itself prints them,
 * so they compare with the live ones: `"status" IN ('a', 'b')` comes back as
 * `CHECK (((status)::text = ANY ((ARRAY['a'::character varying, …])::text[])))`, and
 * `"status" = 'pending'` as `((status)::text = 'pending'::text)`, which no string rule on our
 * side could reproduce. (TypeORM compares checks by name only and ignores index predicates, so
 * its drift check misses a value set or a predicate that changed.)
 *
 * Each expression is added (a check NOT VALID) to an empty temporary copy of its table, read
 * back and rolled back: nothing is written. Only for tables that exist.
 */
export async function canonicalSpellings(
  dataSource: DataSource,
  schema: string,
  expected: Map<string, TableShape>,
  existingTables: ReadonlySet<string>,
): Promise<CanonicalSpellings> {
  const spellings: CanonicalSpellings = { checks: new Map(), indexPredicates: new Map() };
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  // A definition the copy cannot take (its column is missing, which verify reports apart) is
  // compared by name only; a savepoint keeps the transaction usable for the rest.
  const attempt = async (sql: string) => {
    await runner.query('SAVEPOINT pixcrawler_verify_spelling');
    try {
      await runner.query(sql);
      await runner.query('RELEASE SAVEPOINT pixcrawler_verify_spelling');
    } catch {
      await runner.query('ROLLBACK TO SAVEPOINT pixcrawler_verify_spelling');
    }
  };
  try {
    await runner.startTransaction();
    try {
      for (const table of expected.values()) {
        const partial = table.indexes.filter((index) => index.where);
        if (table.checks.length + partial.length === 0 || !existingTables.has(table.name)) {
          continue;
        }
        const copy = `pixcrawler_verify_${table.name}`;
        await runner.query(
          `CREATE TEMPORARY TABLE ${quoteIdentifier(copy)} (LIKE ${quoteIdentifier(schema)}.${quoteIdentifier(table.name)}) ON COMMIT DROP`,
        );
        for (const check of table.checks) {
          await attempt(
            `ALTER TABLE pg_temp.${quoteIdentifier(copy)} ADD CONSTRAINT ${quoteIdentifier(check.name)} CHECK (${check.definition}) NOT VALID`,
          );
        }
        for (const index of partial) {
          const columns = index.columns.map((column) => `${quoteIdentifier(column)}`).join(', ');
          await attempt(
            `CREATE INDEX ${quoteIdentifier(index.name)} ON pg_temp.${quoteIdentifier(copy)} (${columns}) WHERE ${index.where}`,
          );
        }
        const checks: { name: string; definition: string }[] = await runner.query(
          `SELECT conname AS name, pg_get_constraintdef(oid) AS definition
             FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'`,
          [`pg_temp.${quoteIdentifier(copy)}`],
        );
        for (const row of checks) {
          spellings.checks.set(`${table.name}.${row.name}`, withoutNotValid(row.definition));
        }
        const predicates: { name: string; predicate: string }[] = await runner.query(
          `SELECT c.relname AS name, pg_get_expr(i.indpred, i.indrelid) AS predicate
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = $1::regclass AND i.indpred IS NOT NULL`,
          [`pg_temp.${quoteIdentifier(copy)}`],
        );
        for (const row of predicates) {
          spellings.indexPredicates.set(`${table.name}.${row.name}`, row.predicate);
        }
      }
    } finally {
      await runner.rollbackTransaction();
    }
  } finally {
    await runner.release();
  }
  return spellings;
}
