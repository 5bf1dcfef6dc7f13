import type { ForeignKeyShape } from '../../inspect/schema-shape';
import type { AdoptionEntry, AdoptionReport, TableSize } from '../../upgrade/adoption';
import { ALEMBIC_VERSION_TABLE, type DatabaseOrigin } from '../../upgrade/origin';
import { formatBytes, plural } from './words';

/** What the catalog says made the database, as `status`, `plan` and `migrate` name it. */
export function describeOrigin(origin: DatabaseOrigin): string {
  switch (origin.kind) {
    case 'managed':
      return (
        `managed by pixcrawler-db (${plural(origin.applied, 'migration')} recorded)` +
        (origin.alembicRevision
          ? `; ${ALEMBIC_VERSION_TABLE} still says ${origin.alembicRevision}, for the Python side`
          : '')
      );
    case 'alembic':
      return `managed by Alembic at revision ${origin.revision} (PixCrawler's Python side), not yet by pixcrawler-db`;
    case 'orm':
      return "made by the web app's ORM (timestamps without time zone or its `…_fk` foreign keys), not yet managed by pixcrawler-db";
    case 'legacy':
      return 'the pre-001 legacy shape (five tables, no foreign keys, indexes or checks), not yet managed by pixcrawler-db';
    case 'empty':
      return 'an empty database (none of the seven PixCrawler tables)';
  }
}

const describeSize = (size: TableSize | undefined) =>
  size
    ? `${size.rows === null ? 'rows unknown' : `~${size.rows.toLocaleString('en-US')} rows`}, ${formatBytes(size.bytes)}`
    : 'size unknown';

/** The adoption classification (`migrate --baseline`, `plan --baseline`) as an operator reads it. */

const list = (items: readonly string[]) => `(${items.join(', ')})`;
const describeForeignKey = (fk: ForeignKeyShape) =>
  `${list(fk.columns)} → ${fk.referencedTable}${list(fk.referencedColumns)} ON DELETE ${fk.onDelete}`;

/** One entry as a line (without its bullet). */
export function describeAdoptionEntry(entry: AdoptionEntry, report: AdoptionReport): string {
  const limit = report.rewriteLimit;
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
    case 'matches-spec':
      return `${at}: SPEC's name and definition, taken as it is`;
    case 'column-renamed':
      return `${at}: renamed ${entry.replacement} (catalog only: a brief ACCESS EXCLUSIVE lock, no scan)`;
    case 'column-widened':
      return (
        `${at} ${column?.actual?.type} → ${column?.expected?.type}: REWRITES ${table} ` +
        `(${describeSize(entry.size)}) under an ACCESS EXCLUSIVE lock that blocks reads and writes ` +
        'while it runs'
      );
    case 'foreign-key-renamed':
      return (
        `${at} ${describeForeignKey(fk!)}: SPEC's definition, renamed ${entry.replacement} ` +
        '(catalog only: no scan, stays validated; revert gives it this name back)'
      );
    case 'index-renamed':
      return (
        `${at}: SPEC's definition, renamed ${entry.replacement} (catalog only; revert gives it ` +
        'this name back)'
      );
    case 'index-made-unique':
      return (
        `${at}: a plain index where SPEC's is unique: the unique one is built concurrently ` +
        'first, then this one and the old unique constraint go'
      );
    case 'table-adopted':
      return (
        `${table} (${describeSize(entry.size)}): exists already, adopted as it is: keys renamed, ` +
        'its checks added NOT VALID then validated without blocking writes'
      );
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
      return table === ALEMBIC_VERSION_TABLE
        ? `${table}: Alembic's revision record, kept exactly as it is for the Python side`
        : `${table}: a table PixCrawler does not know`;
    case 'extra-column':
      return `${at} ${column?.actual?.type ?? ''}: a column PixCrawler does not know`;
    case 'extra-index':
      return entry.coveredBy
        ? `${at}: an index SPEC does not name; ${entry.coveredBy} serves the same lookups, so it ` +
            'can go by hand (DROP INDEX CONCURRENTLY) once nothing else relies on it'
        : `${at}: an index PixCrawler does not know`;
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
    case 'rewrite-over-limit':
      return (
        `${table}.${object}: widening it rewrites ${table} (${describeSize(entry.size)}), over the ` +
        `limit of ${limit.rows.toLocaleString('en-US')} rows or ${formatBytes(limit.bytes)} ` +
        '(PIXCRAWLER_REWRITE_LIMIT_ROWS, PIXCRAWLER_REWRITE_LIMIT_MB); add --allow-rewrite to ' +
        'accept that, during a maintenance window'
      );
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

/** The whole classification: taken, converted in place, left alone, refused. */
export function formatAdoptionReport(report: AdoptionReport): string {
  const lines: string[] = [
    ...(report.origin ? [`Found: ${describeOrigin(report.origin)}.`] : []),
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
  const kept = of('keep');
  if (kept.length > 0) {
    // Many, and nothing happens to them: one line.
    lines.push(
      `  Taken as they are (SPEC's name and definition): ${kept
        .map((entry) => `${entry.table}.${entry.object}`)
        .join(', ')}`,
    );
  }
  section('Converted in place', of('convert'));
  const leave = of('leave');
  const tables = leave.filter((entry) => entry.reason === 'extra-table');
  section(
    'Left alone',
    leave.filter(
      (entry) => entry.reason !== 'extra-table' || entry.table === ALEMBIC_VERSION_TABLE,
    ),
  );
  const others = tables.filter((t) => t.table !== ALEMBIC_VERSION_TABLE);
  if (others.length > 0) {
    lines.push(
      `  Left alone: ${others.length} other table(s): ${others.map((t) => t.table).join(', ')}`,
    );
  }
  section('Refused (nothing safe resolves these)', of('refuse'));
  if (report.entries.length === 0) lines.push('  The tables match the legacy schema exactly.');
  return lines.join('\n');
}

/** What an operator does about refusals. */
export const ADOPTION_REFUSAL_ADVICE =
  'Bring these tables to one of the shapes the upgrade adopts (docs/operations.md), or restore the database this one was ' +
  'copied from, then run `pixcrawler-db plan --baseline` and `pixcrawler-db migrate --baseline` ' +
  'again. A rewrite over the limit is allowed with --allow-rewrite.';
