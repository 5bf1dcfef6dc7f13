/**
 * Plain, aligned text columns for terminal reports. Numbers (and sizes such as `16 kB`) are
 * right-aligned, text left-aligned.
 */
export function textTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((row) => row.map(String));
  const numeric = headers.map((_, column) =>
    rows.every(
      (row) =>
        typeof row[column] === 'number' || /^-?\d+(\.\d+)?( \w+)?$/.test(String(row[column])),
    ),
  );
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...cells.map((row) => row[column].length)),
  );
  const render = (row: string[]) =>
    row
      .map((cell, column) =>
        numeric[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column]),
      )
      .join('  ')
      .trimEnd();
  return [
    render(headers),
    render(widths.map((width) => '-'.repeat(width))),
    ...cells.map(render),
  ].join('\n');
}
