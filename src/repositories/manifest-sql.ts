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
 * The first characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) evaluate a
 * csv cell as a formula: OWASP's list for CSV injection.
 * https://owasp.org/www-community/attacks/CSV_Injection
 */
export const CSV_FORMULA_TRIGGERS = ['=', '+', '-', '@', '\t', '\r'] as const;

/**
 * OWASP's neutralisation of one csv cell: a cell starting with a formula trigger gets a single
 * quote in front, which spreadsheets show as text and never evaluate. Other cells are unchanged.
 * `manifestCsvSql` does the same in SQL; a test holds the two to the same bytes.
 */
export function neutralizeCsvFormula(value: string): string {
  return (CSV_FORMULA_TRIGGERS as readonly string[]).includes(value.charAt(0))
    ? `'${value}`
    : value;
}

/** The same rule in SQL, for one text column (ascii() is the first character's code point). */
function neutralizedSql(column: string): string {
  const triggers = CSV_FORMULA_TRIGGERS.map((c) => c.charCodeAt(0)).join(', ');
  return `CASE WHEN ascii(${column}) IN (${triggers}) THEN '''' || ${column} ELSE ${column} END`;
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
  /** Apply neutralizeCsvFormula to the text cells (default true). */
  neutralizeFormulas?: boolean;
}

/**
 * The csv manifest as one COPY: a header line, then one record per image, quoted where a value
 * holds a comma, a quote, CR or LF, exactly as csv-stringify (the writer before COPY) wrote it.
 * An empty string becomes an empty cell (NULLIF), as csv-stringify wrote it; COPY alone would
 * write `""`. `rows` is the SELECT of the images, in order, with the manifest's columns.
 */
export function manifestCsvSql(rows: string, options: ManifestCsvOptions = {}): string {
  const cells = MANIFEST_COLUMNS.map((column) => {
    if (!TEXT_COLUMNS.has(column)) return column;
    const value = options.neutralizeFormulas === false ? column : neutralizedSql(column);
    return `NULLIF(${value}, '') AS ${column}`;
  });
  return `COPY (SELECT ${cells.join(', ')} FROM (${rows}) m) TO STDOUT WITH (FORMAT csv, HEADER)`;
}

/**
 * The manifest's rows as binary COPY, the cheapest output PostgreSQL has; CopyBinaryToJsonl
 * turns it into the jsonl manifest.
 */
export function manifestBinarySql(rows: string): string {
  return `COPY (${rows}) TO STDOUT WITH (FORMAT binary)`;
}
