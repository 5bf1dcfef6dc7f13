/**
 * The one way this package writes a name or a value into SQL text, where a parameter cannot go
 * (DDL, CHECK expressions, COPY statements). PostgreSQL's rules: double the quote inside.
 */

/** `"name"`, safe for any identifier (quotes doubled). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."name"` when a schema is given, else `"name"`. */
export function qualifiedName(name: string, schema?: string): string {
  return schema ? `${quoteIdentifier(schema)}.${quoteIdentifier(name)}` : quoteIdentifier(name);
}

/** `'value'`, a standard-conforming string literal (quotes doubled). */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
