/**
 * CSV injection (OWASP): a spreadsheet opening a CSV file runs a cell that starts with `=`, `+`,
 * `-` or `@` as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and a leading tab or
 * carriage return can hide such a start. Image rows come from crawled pages, so their text is
 * attacker-controlled.
 */
export const CSV_FORMULA_TRIGGERS = ['=', '+', '-', '@', '\t', '\r'] as const;

/**
 * The cell as OWASP recommends: text starting with a trigger gets a leading single quote, which
 * spreadsheets show as text and never evaluate; everything else is unchanged. (Quoting each
 * field and doubling embedded double quotes, OWASP's other two steps, is the CSV writer's job.)
 * Pure, so any CSV writer (this one, or a COPY-based one) can be checked against it.
 */
export function neutraliseCsvFormula(value: string): string {
  return (CSV_FORMULA_TRIGGERS as readonly string[]).includes(value.charAt(0))
    ? `'${value}`
    : value;
}
