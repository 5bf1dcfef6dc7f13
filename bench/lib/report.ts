import { textTable } from '../../src/cli/text-table';

/**
 * What every benchmark prints: plain tables whose rows say what was measured, the figure, the
 * baseline's figure and the ratio (plus whatever else explains the figure, such as the plan).
 */
export interface BenchTable {
  title: string;
  headers: string[];
  rows: Array<Array<string | number>>;
  /** Sentences printed under the table: what the baseline is, what the ratio means. */
  notes?: string[];
}

export function renderTable(table: BenchTable): string {
  const lines = [table.title, '', textTable(table.headers, table.rows)];
  if (table.notes?.length) lines.push('', ...table.notes);
  return lines.join('\n');
}

/** The same table in Markdown, for docs/benchmarks.md. */
export function markdownTable(table: BenchTable): string {
  const escape = (cell: string | number) => String(cell).replace(/\|/g, '\\|');
  const lines = [
    `### ${table.title}`,
    '',
    `| ${table.headers.map(escape).join(' | ')} |`,
    `| ${table.headers.map(() => '---').join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ];
  if (table.notes?.length) lines.push('', ...table.notes);
  return lines.join('\n');
}

/**
 * One table from the same table measured on several servers: a `server` column first, each
 * server's rows in turn; title and notes are the first one's (the same on every server).
 */
export function perServerTable(parts: Array<{ server: string; table: BenchTable }>): BenchTable {
  const [first] = parts;
  return {
    title: first.table.title,
    headers: ['server', ...first.table.headers],
    rows: parts.flatMap(({ server, table }) => table.rows.map((row) => [server, ...row])),
    notes: first.table.notes,
  };
}

/** Fixed-precision number formatting for tables. */
export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toFixed(digits);
}

export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(ms >= 10 ? 1 : 2)} ms`;
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** `a / b` as `1.23x`. */
export function ratio(a: number, b: number): string {
  if (!(b > 0) || !Number.isFinite(a)) return 'n/a';
  const value = a / b;
  // Two significant digits below 0.1, so a 300-fold difference does not print as 0.00x.
  return value > 0 && value < 0.1 ? `${value.toPrecision(2)}x` : `${value.toFixed(2)}x`;
}

/** `(a - b) / b` as a signed percentage: how much larger (or smaller) a is than b. */
export function change(a: number, b: number): string {
  if (!(b > 0) || !Number.isFinite(a)) return 'n/a';
  const pct = ((a - b) / b) * 100;
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%`;
}
