import { normalizeDefault, type TableShape } from '../inspect/schema-shape';
import { quoteIdentifier } from '../sql/quote';

/**
 * The five tables as an existing PixCrawler database holds them ("The database before this
 * change" in SPEC.md), described once as data. `migrate --baseline` classifies a database's
 * differences from it (upgrade/adoption.ts), and the legacy database builder creates its tables
 * and COPYs its rows from it.
 *
 * Types are spelled the way PostgreSQL's `format_type()` prints them, so the check compares
 * strings. Defaults are SQL expressions (what the builder writes); the check does not compare
 * them: a different default changes no data and the migrations do not depend on it.
 */
export interface LegacyColumn {
  name: string;
  /** As `format_type(atttypid, atttypmod)` prints it, e.g. `character varying(255)`. */
  type: string;
  nullable: boolean;
  /** `serial`: an integer with its own sequence (the builder creates it as SERIAL). */
  serial?: boolean;
  default?: string;
  /**
   * Names the column had in databases built by other tools, renamed in place when adopted (a
   * catalog-only change): PixCrawler's Alembic 001 called `activity_logs.metadata` `metadata_`.
   */
  formerNames?: readonly string[];
}

export interface LegacyTable {
  name: string;
  columns: LegacyColumn[];
  /** The unique constraints an existing database has, by PostgreSQL's default name. */
  unique?: Array<{ name: string; columns: string[] }>;
}

const id: LegacyColumn = { name: 'id', type: 'integer', nullable: false, serial: true };
const timestamps: LegacyColumn[] = [
  { name: 'created_at', type: 'timestamp with time zone', nullable: false, default: 'now()' },
  { name: 'updated_at', type: 'timestamp with time zone', nullable: false, default: 'now()' },
];
const count = (name: string): LegacyColumn => ({
  name,
  type: 'integer',
  nullable: false,
  default: '0',
});

/** Parents before children: the order to create and load them in. */
export const LEGACY_TABLES: readonly LegacyTable[] = [
  {
    name: 'profiles',
    columns: [
      { name: 'id', type: 'uuid', nullable: false },
      { name: 'email', type: 'character varying(255)', nullable: false },
      { name: 'full_name', type: 'character varying(100)', nullable: true },
      { name: 'avatar_url', type: 'text', nullable: true },
      { name: 'role', type: 'character varying(20)', nullable: false, default: `'user'` },
      ...timestamps,
    ],
    unique: [{ name: 'profiles_email_key', columns: ['email'] }],
  },
  {
    name: 'projects',
    columns: [
      id,
      { name: 'name', type: 'character varying(100)', nullable: false },
      { name: 'description', type: 'text', nullable: true },
      { name: 'user_id', type: 'uuid', nullable: false },
      { name: 'status', type: 'character varying(20)', nullable: false, default: `'active'` },
      ...timestamps,
    ],
  },
  {
    name: 'crawl_jobs',
    columns: [
      id,
      { name: 'project_id', type: 'integer', nullable: false },
      { name: 'name', type: 'character varying(100)', nullable: false },
      { name: 'keywords', type: 'jsonb', nullable: false },
      { name: 'max_images', type: 'integer', nullable: false, default: '1000' },
      { name: 'status', type: 'character varying(20)', nullable: false, default: `'pending'` },
      count('progress'),
      count('total_images'),
      count('downloaded_images'),
      count('valid_images'),
      { name: 'started_at', type: 'timestamp with time zone', nullable: true },
      { name: 'completed_at', type: 'timestamp with time zone', nullable: true },
      count('total_chunks'),
      count('active_chunks'),
      count('completed_chunks'),
      count('failed_chunks'),
      { name: 'task_ids', type: 'jsonb', nullable: false, default: `'[]'` },
      ...timestamps,
    ],
  },
  {
    name: 'images',
    columns: [
      id,
      { name: 'crawl_job_id', type: 'integer', nullable: false },
      { name: 'original_url', type: 'text', nullable: false },
      { name: 'filename', type: 'character varying(255)', nullable: false },
      { name: 'storage_url', type: 'text', nullable: true },
      { name: 'width', type: 'integer', nullable: true },
      { name: 'height', type: 'integer', nullable: true },
      { name: 'file_size', type: 'integer', nullable: true },
      { name: 'format', type: 'character varying(10)', nullable: true },
    ],
  },
  {
    name: 'activity_logs',
    columns: [
      id,
      { name: 'user_id', type: 'uuid', nullable: true },
      { name: 'action', type: 'text', nullable: false },
      { name: 'resource_type', type: 'character varying(50)', nullable: true },
      { name: 'resource_id', type: 'character varying(50)', nullable: true },
      { name: 'metadata', type: 'jsonb', nullable: true, formerNames: ['metadata_'] },
      {
        name: 'timestamp',
        type: 'timestamp with time zone',
        nullable: false,
        default: 'now()',
      },
    ],
  },
];

export const LEGACY_TABLE_NAMES: readonly string[] = LEGACY_TABLES.map((table) => table.name);

/** CREATE TABLE for one legacy table, with PostgreSQL's default constraint names. */
export function legacyTableDdl(table: LegacyTable): string {
  const columns = table.columns.map((column) => {
    const type = column.serial ? 'serial' : column.type;
    const nullability = column.nullable ? '' : ' NOT NULL';
    const fallback = column.default ? ` DEFAULT ${column.default}` : '';
    return `${quoteIdentifier(column.name)} ${type}${nullability}${fallback}`;
  });
  const constraints = [
    `CONSTRAINT "${table.name}_pkey" PRIMARY KEY ("id")`,
    ...(table.unique ?? []).map(
      (unique) =>
        `CONSTRAINT ${quoteIdentifier(unique.name)} UNIQUE (${unique.columns.map((c) => `${quoteIdentifier(c)}`).join(', ')})`,
    ),
  ];
  return `CREATE TABLE ${quoteIdentifier(table.name)} (\n  ${[...columns, ...constraints].join(',\n  ')}\n)`;
}

/**
 * The legacy tables as a schema shape, for the one comparer (inspect/schema-compare.ts): columns
 * with their types and nullability, the primary key on `id` under PostgreSQL's default name, the
 * unique constraints, and nothing else. Defaults are normalised like the catalog's, though the
 * adoption check does not compare them.
 */
export function legacyShape(): Map<string, TableShape> {
  return new Map(
    LEGACY_TABLES.map((table): [string, TableShape] => [
      table.name,
      {
        name: table.name,
        columns: table.columns.map((column) => ({
          name: column.name,
          type: column.type,
          nullable: column.nullable,
          default: column.serial
            ? 'nextval(sequence)'
            : normalizeDefault(column.default ?? null, column.type),
        })),
        primaryKey: { name: `${table.name}_pkey`, columns: ['id'] },
        foreignKeys: [],
        indexes: [],
        uniques: (table.unique ?? []).map((unique) => ({ ...unique })),
        checks: [],
      },
    ]),
  );
}

type Query = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/**
 * Tables the migrations create next to the legacy ones (JobTablesAndConstraints). A pre-001
 * database has none; a database PixCrawler's Alembic 001 built has both, with rows, and the
 * migration adopts them instead of creating them.
 */
export const JOB_TABLE_NAMES: readonly string[] = ['validation_jobs', 'export_jobs'];

/** @deprecated Use JOB_TABLE_NAMES; the tables are adopted when they exist, not refused. */
export const TABLES_THE_CHANGE_CREATES = JOB_TABLE_NAMES;

/** All seven tables, parents before children: the order to load, repair and restore them in. */
export const PIXCRAWLER_TABLE_NAMES: readonly string[] = [
  ...LEGACY_TABLE_NAMES,
  ...JOB_TABLE_NAMES,
];

/** Which of `names` exist in the current schema, in the order given. */
export async function existingTables(
  query: Query,
  names: readonly string[] = PIXCRAWLER_TABLE_NAMES,
): Promise<string[]> {
  const rows = await query<{ name: string }>(
    `SELECT relname AS name FROM pg_class
      WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
        AND relname = ANY($1)`,
    [names],
  );
  const found = new Set(rows.map((row) => row.name));
  return names.filter((name) => found.has(name));
}

/** The legacy tables that exist in the current schema (any of the five), by name. */
export async function existingLegacyTables(query: Query): Promise<string[]> {
  return (await existingTables(query, LEGACY_TABLE_NAMES)).sort();
}
