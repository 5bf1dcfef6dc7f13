import type { ForeignKeyShape } from '../../inspect/schema-shape';
import type { AdoptionEntry, AdoptionReport } from '../../upgrade/adoption';

/** The adoption classification (`migrate --baseline`, `plan --baseline`) as an operator reads it. */

const list = (items: readonly string[]) => `(${items.join(', ')})`;
const describeForeignKey = (fk: ForeignKeyShape) =>
  `${list(fk.columns)} → ${fk.referencedTable}${list(fk.referencedColumns)} ON DELETE ${fk.onDelete}`;

/** One entry as a line (without its bullet). */
export function describeAdoptionEntry(entry: AdoptionEntry, report: AdoptionReport): string {
  const { table, object, difference: d } = entry;
  const at = `${table}.${object}`;
  const column = d?.kind === 'column' ? d : undefined;
  const fk = d?.kind === 'foreign key' ? d.actual : undefined;
  switch (entry.reason) {
    case 'timestamp-without-time-zone': {
      const conversion = report.conversions.find((c) => c.table === table);
      const how = conversion?.rewrites
        ? 'REWRITES the table under an ACCESS EXCLUSIVE lock (allowed by --allow-rewrite)'
        : 'catalog only, no rewrite: a brief ACCESS EXCLUSIVE lock';
      return (
        `${at}: timestamp without time zone → timestamptz, each value read as ` +
        `${report.timezone} wall-clock time (--legacy-timezone to change); ${how}`
      );
    }
    case 'foreign-key-replaced':
      return (
        `${at} ${describeForeignKey(fk!)}: replaced by ${entry.replacement} ` +
        '(added NOT VALID, validated without blocking writes, then this one dropped)'
      );
    case 'unique-replaced-by-index':
      return (
        `${at} UNIQUE ${list(d?.kind === 'unique constraint' ? d.actual!.columns : [])}: ` +
        `replaced by the unique index ${entry.replacement} (built concurrently, then this ` +
        'constraint dropped)'
      );
    case 'primary-key-renamed':
      return `${at}: primary key renamed ${entry.replacement} (catalog only)`;
    case 'extra-table':
      return `${table}: a table PixCrawler does not know`;
    case 'extra-column':
      return `${at} ${column?.actual?.type ?? ''}: a column PixCrawler does not know`;
    case 'extra-index':
      return `${at}: an index PixCrawler does not know`;
    case 'extra-check':
      return `${at}: a check PixCrawler does not know`;
    case 'extra-unique':
      return `${at}: a unique constraint PixCrawler does not know`;
    case 'extra-foreign-key':
      return `${at} ${describeForeignKey(fk!)}: a foreign key on a column PixCrawler does not know`;
    case 'foreign-key-into-table': {
      const blocks = fk && (fk.onDelete === 'NO ACTION' || fk.onDelete === 'RESTRICT');
      return (
        `${at} ${describeForeignKey(fk!)}: another table's foreign key into PixCrawler's` +
        (blocks ? `; deleting a ${fk.referencedTable} row it references fails, not cascades` : '')
      );
    }
    case 'table-missing':
      return `${table}: table is missing`;
    case 'column-missing':
      return `${at}: column is missing`;
    case 'column-type':
      return `${at}: type is ${column?.actual?.type}, expected ${column?.expected?.type}`;
    case 'column-nullability':
      return `${at}: ${
        column?.expected?.nullable
          ? 'is NOT NULL, expected nullable'
          : 'is nullable, expected NOT NULL'
      }`;
    case 'primary-key-missing':
      return `${table}: has no primary key, expected one on (id)`;
    case 'primary-key-columns':
      return d?.kind === 'primary key'
        ? `${table}: primary key is on ${list(d.actual!.columns)}, expected (id)`
        : `${table}: primary key is not on (id)`;
    case 'table-exists':
      return `${table}: exists already, but the upgrade creates it`;
    case 'name-taken':
      return `${at}: the upgrade gives this name to an object of its own; rename this one first`;
    case 'unknown-timezone':
      return `--legacy-timezone ${object}: PostgreSQL does not know this zone (see pg_timezone_names)`;
    case 'rewrite-not-allowed':
      return (
        `${table} (${object}): reading timestamps as ${report.timezone} rewrites the whole table ` +
        'under an ACCESS EXCLUSIVE lock (only UTC is a catalog-only change); add --allow-rewrite ' +
        'to accept that, during a maintenance window'
      );
  }
}

/** The whole classification: converted in place, left alone, refused; then what to do. */
export function formatAdoptionReport(report: AdoptionReport): string {
  const lines: string[] = [
    `Adopting the existing tables (${report.existingTables.join(', ')}); timestamps without ` +
      `time zone are read as ${report.timezone}.`,
  ];
  const section = (title: string, entries: AdoptionEntry[]) => {
    if (entries.length === 0) return;
    lines.push(`  ${title}:`);
    const grouped = new Set<string>();
    for (const entry of entries) {
      // One line per table for its timestamp columns: they change in one statement.
      if (entry.reason === 'timestamp-without-time-zone') {
        if (grouped.has(entry.table)) continue;
        grouped.add(entry.table);
        const columns = entries
          .filter((e) => e.reason === entry.reason && e.table === entry.table)
          .map((e) => e.object);
        lines.push(
          `    - ${describeAdoptionEntry({ ...entry, object: columns.join(', ') }, report)}`,
        );
        continue;
      }
      lines.push(`    - ${describeAdoptionEntry(entry, report)}`);
    }
  };
  const of = (action: AdoptionEntry['action']) =>
    report.entries.filter((entry) => entry.action === action);
  section('Converted in place', of('convert'));
  const leave = of('leave');
  const tables = leave.filter((entry) => entry.reason === 'extra-table');
  section(
    'Left alone',
    leave.filter((entry) => entry.reason !== 'extra-table'),
  );
  if (tables.length > 0) {
    lines.push(
      `  Left alone: ${tables.length} other table(s): ${tables.map((t) => t.table).join(', ')}`,
    );
  }
  section('Refused (nothing safe resolves these)', of('refuse'));
  if (report.entries.length === 0) lines.push('  The tables match the legacy schema exactly.');
  return lines.join('\n');
}

/** What an operator does about refusals. */
export const ADOPTION_REFUSAL_ADVICE =
  'Bring these tables to the shape in SPEC.md ("The database before this change"), or restore ' +
  'the database this one was copied from, then run `pixcrawler-db plan --baseline` and ' +
  '`pixcrawler-db migrate --baseline` again.';
