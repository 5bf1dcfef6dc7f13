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
