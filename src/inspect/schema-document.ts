import { entityTableNames } from '../entities/table-names';
import type { TableShape } from './schema-shape';

/** Table order in the document: the `entities` array's, parents before children. */
const ORDER = entityTableNames();

const cell = (text: string) => text.replace(/\|/g, '\\|');
const code = (text: string) => `\`${cell(text)}\``;
/** Mermaid attribute types are one word: `character varying(255)` → `varchar_255`. */
const mermaidType = (type: string) =>
  type
    .replace('character varying', 'varchar')
    .replace('timestamp with time zone', 'timestamptz')
    .replace('timestamp without time zone', 'timestamp')
    .replace(/[^\w]+/g, '_')
    .replace(/_+$/, '');

/**
 * docs/schema.md: every table, column, key, index and check the entities describe, and an ER
 * diagram of how the tables relate, written from the entity metadata (expectedSchema) by
 * `npm run docs:schema`; a unit test fails when the file is stale.
 */
export function schemaDocument(schema: Map<string, TableShape>): string {
  const tables = [...schema.values()].sort(
    (a, b) => ORDER.indexOf(a.name) - ORDER.indexOf(b.name) || a.name.localeCompare(b.name),
  );
  const lines = [
    '# The schema',
    '',
    'Written from the entity metadata by `npm run docs:schema` (a test fails when this file is',
    'stale). Types and defaults are PostgreSQL’s own spelling; the CLI’s `verify` compares a',
    'database with exactly this.',
    '',
    '## How the tables relate',
    '',
    '```mermaid',
    'erDiagram',
  ];
  for (const table of tables) {
    for (const fk of table.foreignKeys) {
      const nullable = fk.columns.some(
        (name) => table.columns.find((column) => column.name === name)?.nullable,
      );
      lines.push(
        `  ${fk.referencedTable} ${nullable ? '|o' : '||'}--o{ ${table.name} : "${fk.columns.join(', ')} (on delete ${fk.onDelete.toLowerCase()})"`,
      );
    }
  }
  for (const table of tables) {
    const primary = new Set(table.primaryKey?.columns ?? []);
    const foreign = new Set(table.foreignKeys.flatMap((fk) => fk.columns));
    lines.push(`  ${table.name} {`);
    for (const column of table.columns) {
      const keys = [primary.has(column.name) && 'PK', foreign.has(column.name) && 'FK'].filter(
        Boolean,
      );
      lines.push(
        `    ${mermaidType(column.type)} ${column.name}${keys.length ? ` ${keys.join(', ')}` : ''}`,
      );
    }
    lines.push('  }');
  }
  lines.push('```');

  for (const table of tables) {
    lines.push(
      '',
      `## ${table.name}`,
      '',
      '| column | type | null | default |',
      '| --- | --- | --- | --- |',
    );
    for (const column of table.columns) {
      lines.push(
        `| ${code(column.name)} | ${cell(column.type)} | ${column.nullable ? 'yes' : 'no'} | ${column.default === null ? '' : code(column.default)} |`,
      );
    }
    if (table.primaryKey) {
      lines.push(
        '',
        `Primary key ${code(table.primaryKey.name)} (${table.primaryKey.columns.join(', ')}).`,
      );
    }
    if (table.foreignKeys.length > 0) {
      lines.push(
        '',
        '| foreign key | columns | references | on delete |',
        '| --- | --- | --- | --- |',
      );
      for (const fk of table.foreignKeys) {
        lines.push(
          `| ${code(fk.name)} | ${fk.columns.join(', ')} | ${fk.referencedTable} (${fk.referencedColumns.join(', ')}) | ${fk.onDelete} |`,
        );
      }
    }
    if (table.indexes.length > 0 || table.uniques.length > 0) {
      lines.push('', '| index | columns | unique | where |', '| --- | --- | --- | --- |');
      for (const index of table.indexes) {
        lines.push(
          `| ${code(index.name)} | ${cell(index.columns.join(', '))} | ${index.unique ? 'yes' : 'no'} | ${index.where ? code(index.where) : ''} |`,
        );
      }
      for (const unique of table.uniques) {
        lines.push(`| ${code(unique.name)} (constraint) | ${unique.columns.join(', ')} | yes | |`);
      }
    }
    if (table.checks.length > 0) {
      lines.push('', '| check | definition |', '| --- | --- |');
      for (const check of table.checks) {
        lines.push(`| ${code(check.name)} | ${code(check.definition)} |`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}
