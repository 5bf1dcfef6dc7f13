/**
 * One description of a table, used for both sides of `verify`: what the live catalog holds
 * (schema-catalog.ts) and what the entity metadata expects (expected-schema.ts). Types and
 * defaults are in PostgreSQL's own spelling (`format_type`, `pg_get_expr`), normalised by
 * `normalizeDefault`, so the two sides compare as plain strings.
 */

export type ReferentialAction = 'CASCADE' | 'SET NULL' | 'SET DEFAULT' | 'RESTRICT' | 'NO ACTION';

export interface ColumnShape {
  name: string;
  /** `character varying(255)`, `integer`, `timestamp with time zone`, `jsonb`, … */
  type: string;
  nullable: boolean;
  /** Normalised: `'pending'`, `0`, `now()`, `'[]'`, `nextval(sequence)`; null when none. */
  default: string | null;
}

export interface PrimaryKeyShape {
  name: string;
  columns: string[];
}

export interface ForeignKeyShape {
  name: string;
  columns: string[];
  referencedTable: string;
  referencedColumns: string[];
  onDelete: ReferentialAction;
  onUpdate: ReferentialAction;
  /** False for a constraint added NOT VALID and never validated (catalog side only). */
  validated?: boolean;
}

export interface IndexShape {
  name: string;
  /** Column names in index order; an expression appears as its SQL text. */
  columns: string[];
  unique: boolean;
  /** Access method: btree, or gist for a spatial index; hash, gin, brin … only by hand. */
  method: string;
  /** The WHERE of a partial index, as PostgreSQL prints it. */
  where: string | null;
  /**
   * Expected side: false when `where` could not be put in PostgreSQL's spelling (a read-only
   * standby refuses the temporary table that takes); then only whether the index is partial is
   * compared, not the predicate's text.
   */
  whereComparable?: false;
  /** False for an INVALID index: a concurrent build that failed or was killed (catalog only). */
  valid?: boolean;
}

export interface UniqueShape {
  name: string;
  columns: string[];
}

export interface CheckShape {
  name: string;
  /** As declared (`@Check`) on the expected side; `pg_get_constraintdef` on the catalog side. */
  definition: string;
  /** False for a constraint added NOT VALID and never validated (catalog side only). */
  validated?: boolean;
  /**
   * Expected side: the definition is in PostgreSQL's own spelling (canonicalSpellings),
   * so it can be compared with the catalog's; otherwise only the name is compared.
   */
  comparable?: boolean;
}

export interface TableShape {
  name: string;
  columns: ColumnShape[];
  primaryKey: PrimaryKeyShape | null;
  foreignKeys: ForeignKeyShape[];
  indexes: IndexShape[];
  uniques: UniqueShape[];
  checks: CheckShape[];
}

const LITERAL_WITH_CAST = /^'((?:[^']|'')*)'(?:::[\w\s]+(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?)+$/;

/**
 * A column default as a comparable string. PostgreSQL stores `DEFAULT 'pending'` on a varchar
 * column as `'pending'::character varying`, `DEFAULT '[]'` on jsonb as `'[]'::jsonb`, a serial's
 * default as `nextval('projects_id_seq'::regclass)`, and numbers sometimes as `'0'::integer` or
 * `(-1)`. All of these reduce to the literal alone; JSON literals are re-serialised so that
 * spacing does not matter; every nextval() is `nextval(sequence)`, whatever the sequence's name.
 */
export function normalizeDefault(expression: string | null | undefined, type = ''): string | null {
  if (expression === null || expression === undefined) return null;
  let value = expression.trim();
  while (wrappedInParentheses(value)) value = value.slice(1, -1).trim();
  if (/^nextval\(/i.test(value)) return 'nextval(sequence)';
  if (/^(now\(\)|current_timestamp|transaction_timestamp\(\))$/i.test(value)) return 'now()';
  const literal = LITERAL_WITH_CAST.exec(value);
  if (literal) {
    const text = literal[1].replaceAll("''", "'");
    if (type === 'json' || type === 'jsonb') {
      try {
        return quote(JSON.stringify(JSON.parse(text)));
      } catch {
        return quote(text);
      }
    }
    // A number written as a string literal ('0'::integer) is the number.
    if (
      /^-?\d+(\.\d+)?$/.test(text) &&
      /^(integer|bigint|smallint|numeric|real|double)/.test(type)
    ) {
      return text;
    }
    return quote(text);
  }
  return value;
}

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** `(…)` where the first parenthesis closes at the very end (not `(a) + (b)`). */
function wrappedInParentheses(value: string): boolean {
  if (!value.startsWith('(') || !value.endsWith(')')) return false;
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '(') depth++;
    else if (value[i] === ')') depth--;
    if (depth === 0 && i < value.length - 1) return false;
  }
  return true;
}
