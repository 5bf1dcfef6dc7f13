/**
 * COPY's text format (the default of `COPY … FROM STDIN`): one line per row, tab between
 * values, `\N` for NULL, and a backslash escape for the four bytes that would break a line
 * apart. https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2
 */
const NEEDS_ESCAPE = /[\\\n\r\t]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export type CopyValue = string | number | null | undefined;

/** One value as COPY text; null and undefined are NULL. */
export function copyTextValue(value: CopyValue): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'number') return String(value);
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\n\r\t]/g, (c) => ESCAPES[c]) : value;
}

/** One row as a COPY text line, newline included. */
export function copyTextLine(values: readonly CopyValue[]): string {
  let line = copyTextValue(values[0]);
  for (let i = 1; i < values.length; i++) line += `\t${copyTextValue(values[i])}`;
  return `${line}\n`;
}
