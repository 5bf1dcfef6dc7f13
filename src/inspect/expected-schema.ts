import type { DataSource, EntityMetadata } from 'typeorm';
import {
  normalizeDefault,
  type ColumnShape,
  type ReferentialAction,
  type TableShape,
} from './schema-shape';

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

/**
 * The expected check constraints as PostgreSQL itself prints them, so they compare with
 * `pg_get_constraintdef` of the live ones: `"status" IN ('a', 'b')` comes back as
 * `CHECK (((status)::text = ANY ((ARRAY['a'::character varying, …])::text[])))`, which no string
 * rule on our side could reproduce. (TypeORM compares checks by name only, so its drift check
 * misses a value set that changed.)
 *
 * Each expression is added NOT VALID to an empty temporary copy of its table, read back and
 * rolled back: nothing is written. Returns `table.check` → definition, for tables that exist.
 */
export async function canonicalCheckDefinitions(
  dataSource: DataSource,
  schema: string,
  expected: Map<string, TableShape>,
  existingTables: ReadonlySet<string>,
): Promise<Map<string, string>> {
  const definitions = new Map<string, string>();
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    try {
      for (const table of expected.values()) {
        if (table.checks.length === 0 || !existingTables.has(table.name)) continue;
        const copy = `pixcrawler_verify_${table.name}`;
        await runner.query(
          `CREATE TEMPORARY TABLE "${copy}" (LIKE "${schema}"."${table.name}") ON COMMIT DROP`,
        );
        for (const check of table.checks) {
          // A check the copy cannot take (its column is missing, which verify reports apart)
          // is compared by name only; a savepoint keeps the transaction usable for the rest.
          await runner.query('SAVEPOINT pixcrawler_verify_check');
          try {
            await runner.query(
              `ALTER TABLE pg_temp."${copy}" ADD CONSTRAINT "${check.name}" CHECK (${check.definition}) NOT VALID`,
            );
            await runner.query('RELEASE SAVEPOINT pixcrawler_verify_check');
          } catch {
            await runner.query('ROLLBACK TO SAVEPOINT pixcrawler_verify_check');
          }
        }
        const rows: { name: string; definition: string }[] = await runner.query(
          `SELECT conname AS name, pg_get_constraintdef(oid) AS definition
             FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'`,
          [`pg_temp."${copy}"`],
        );
        for (const row of rows) {
          definitions.set(`${table.name}.${row.name}`, withoutNotValid(row.definition));
        }
      }
    } finally {
      await runner.rollbackTransaction();
    }
  } finally {
    await runner.release();
  }
  return definitions;
}

/** `pg_get_constraintdef` appends ` NOT VALID` to unvalidated constraints; validity is compared apart. */
export const withoutNotValid = (definition: string): string =>
  definition.replace(/\s+NOT VALID$/, '');
