import { escapeLiteral } from 'pg';

/** The manifest's columns: the images table's columns, in its order. */
export const MANIFEST_COLUMNS = [
  'id',
  'crawl_job_id',
  'original_url',
  'filename',
  'storage_url',
  'width',
  'height',
  'file_size',
  'format',
] as const;
export type ManifestColumn = (typeof MANIFEST_COLUMNS)[number];

/** The manifest's text columns: the only cells a spreadsheet could take for a formula. */
const TEXT_COLUMNS: ReadonlySet<ManifestColumn> = new Set([
  'original_url',
  'filename',
  'storage_url',
  'format',
]);

/**
 * CSV injection (OWASP): a spreadsheet opening a CSV file runs a cell that starts with `=`, `+`,
 * `-` or `@` as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and a leading tab or
 * carriage return can hide such a start. Image rows come from crawled pages, so their text is
 * attacker-controlled. https://owasp.org/www-community/attacks/CSV_Injection
 */
export const CSV_FORMULA_TRIGGERS = ['=', '+', '-', '@', '\t', '\r'] as const;

/**
 * The cell as OWASP recommends: text starting with a trigger gets a leading single quote, which
 * spreadsheets show as text and never evaluate; everything else is unchanged. (Quoting each
 * field and doubling embedded double quotes, OWASP's other two steps, is the CSV writer's job.)
 * Pure, so any CSV writer can be checked against it: csvRowEncoder applies the same
 * rule to the bytes COPY writes, and a test holds the two to the same bytes. (Defined here,
 * beside the csv SQL; the services re-export it.)
 */
export function neutraliseCsvFormula(value: string): string {
  return (CSV_FORMULA_TRIGGERS as readonly string[]).includes(value.charAt(0))
    ? `'${value}`
    : value;
}

/**
 * COPY takes no bind parameters, so the row filter's values are written into the statement as
 * literals: integers checked to be integers, strings quoted by pg's escapeLiteral.
 */
export function inlineParams(sql: string, params: readonly unknown[]): string {
  const literal = (value: unknown): string => {
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
    if (typeof value === 'string') return escapeLiteral(value);
    if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(', ')}]::text[]`;
    throw new TypeError(`cannot write ${JSON.stringify(value)} into a COPY statement`);
  };
  return sql.replace(/\$(\d+)/g, (_, n: string) => literal(params[Number(n) - 1]));
}

export interface ManifestCsvOptions {
  /**
   * OWASP formula protection (default true): neutraliseCsvFormula on every text cell, and every
   * text cell quoted.
   */
  formulaProtection?: boolean;
}

/**
 * The csv manifest's header line, as csv-stringify (the writer before COPY) wrote it: with
 * formula protection every header cell is quoted (they are strings).
 */
export function manifestCsvHeader(options: ManifestCsvOptions = {}): string {
  const quote = options.formulaProtection !== false;
  return `${MANIFEST_COLUMNS.map((c) => (quote ? `"${c}"` : c)).join(',')}\n`;
}

/**
 * The csv manifest's records as one COPY (the header is `manifestCsvHeader`), byte for byte
 * what csv-stringify wrote before COPY: a cell is quoted when it holds a comma, a quote, CR or
 * LF, quotes doubled; NULL is an empty cell. With formula protection (csv-stringify's
 * `quoted_string`) every non-NULL text cell is quoted (FORCE_QUOTE), the empty string as `""`,
 * and csvRowEncoder adds the `'`s on the way out (the server evaluating a CASE per cell halved
 * COPY's speed); without it an empty string is an empty cell like NULL, which csvRowEncoder
 * makes of the `""` COPY writes. `rows` is the SELECT of the images, in order, with the
 * manifest's columns.
 */
export function manifestCsvSql(rows: string, options: ManifestCsvOptions = {}): string {
  const text = MANIFEST_COLUMNS.filter((column) => TEXT_COLUMNS.has(column));
  const force = options.formulaProtection !== false ? `, FORCE_QUOTE (${text.join(', ')})` : '';
  return `COPY (${rows}) TO STDOUT WITH (FORMAT csv${force})`;
}

/**
 * The manifest's rows as binary COPY, the cheapest output PostgreSQL has; CopyBinaryToJsonl
 * turns it into the jsonl manifest.
 */
export function manifestBinarySql(rows: string): string {
  return `COPY (${rows}) TO STDOUT WITH (FORMAT binary)`;
}
