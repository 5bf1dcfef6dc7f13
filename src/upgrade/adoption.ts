import type { DataSource } from 'typeorm';
import { quoteIdentifier, quoteLiteral } from '../sql/quote';
import { expectedSchema } from '../inspect/expected-schema';
import {
  existingTables,
  JOB_TABLE_NAMES,
  LEGACY_TABLES,
  legacyShape,
  PIXCRAWLER_TABLE_NAMES,
} from './legacy-schema';
import { detectOrigin, type DatabaseOrigin } from './origin';
import { wholeNumberSetting } from '../settings';
import { currentSchema, readSchemaCatalog } from '../inspect/schema-catalog';
import type { ForeignKeyShape, IndexShape, TableShape } from '../inspect/schema-shape';
import {
  compareSchemas,
  sameIndexDefinition,
  sameList,
  withoutNotValid,
  type CheckDifference,
  type ForeignKeyDifference,
  type IndexDifference,
  type SchemaDifference,
  type UniqueDifference,
} from '../inspect/schema-compare';

/**
 * Adopting an existing database (`migrate --baseline`, `plan --baseline`): every difference
 * between its tables and what the migrations start from, classified. The five legacy tables are
 * compared with the legacy shape (legacy-schema.ts); validation_jobs and export_jobs, where they
 * exist already (PixCrawler's Alembic 001 made them), with the entities' columns. Named objects
 * (foreign keys, indexes, checks) on all seven are compared with the entities' own.
 *
 * - keep: SPEC's name and SPEC's definition: taken as it is, nothing done;
 * - convert: the upgrade resolves it in place, with the least work PostgreSQL allows:
 *   - renamed (catalog only): a column under a former name (`metadata_`), a primary key, a
 *     foreign key or index with SPEC's definition under another name;
 *   - timestamps without time zone become timestamptz in the baseline step;
 *   - an integer column SPEC makes bigint is widened (a rewrite: gated by size, below);
 *   - a foreign key of another rule on an FK column is replaced (SPEC's added NOT VALID,
 *     validated, the old one dropped); a unique constraint or plain index on profiles.email gives
 *     way to the unique index ix_profiles_email, built concurrently first;
 *   - existing job tables are adopted: their checks added NOT VALID and validated;
 * - leave: the upgrade does not touch it (extra columns, tables, indexes, checks, foreign keys
 *   elsewhere, and foreign keys from other tables into ours);
 * - refuse: nothing safe resolves it (a missing column, another type, a name SPEC gives to
 *   something of another definition, a rewrite over the limit); the operator must.
 *
 * The entries are data with a reason code; the CLI words them (src/cli/reports/adoption.ts).
 */

export type AdoptionAction = 'keep' | 'convert' | 'leave' | 'refuse';

export type AdoptionReason =
  // keep
  | 'matches-spec'
  // convert
  | 'timestamp-without-time-zone'
  | 'column-renamed'
  | 'column-widened'
  | 'foreign-key-renamed'
  | 'foreign-key-replaced'
  | 'index-renamed'
  | 'index-made-unique'
  | 'unique-replaced-by-index'
  | 'primary-key-renamed'
  | 'table-adopted'
  // leave
  | 'extra-table'
  | 'extra-column'
  | 'extra-index'
  | 'extra-check'
  | 'extra-unique'
  | 'extra-foreign-key'
  | 'foreign-key-into-table'
  // refuse
  | 'table-missing'
  | 'column-missing'
  | 'column-type'
  | 'column-nullability'
  | 'primary-key-missing'
  | 'primary-key-columns'
  | 'name-taken'
  | 'unknown-timezone'
  | 'rewrite-not-allowed'
  | 'rewrite-over-limit'
  /** @deprecated No longer produced: existing job tables are adopted ('table-adopted'). */
  | 'table-exists';

export interface AdoptionEntry {
  action: AdoptionAction;
  reason: AdoptionReason;
  table: string;
  /** The column, constraint or index concerned; the table's name for a whole table. */
  object: string;
  /** The comparer's difference behind the entry (what was expected and what was found). */
  difference?: SchemaDifference;
  /** What takes the object's place: SPEC's column, foreign key, index or primary key name. */
  replacement?: string;
  /** An extra index whose lookups a SPEC index serves as well (its columns lead that one's). */
  coveredBy?: string;
  /** The table's size, for a conversion that rewrites it or a table adopted whole. */
  size?: TableSize;
}

/** The baseline step's type change of one table's timestamp columns. */
export interface TimestampConversion {
  table: string;
  columns: string[];
  /** The zone the stored wall-clock values are read in. */
  timezone: string;
  /** False when PostgreSQL only changes the catalog (UTC, PostgreSQL 12 and newer). */
  rewrites: boolean;
}

/** The baseline step's rename of a column from a former name (catalog only). */
export interface ColumnRename {
  table: string;
  from: string;
  to: string;
}

/** An integer column SPEC makes bigint: JobTablesAndConstraints rewrites its table. */
export interface ColumnWidening {
  table: string;
  column: string;
  from: string;
  to: string;
  size: TableSize;
}

/** pg_class.reltuples (null when never analysed) and pg_table_size. */
export interface TableSize {
  rows: number | null;
  bytes: number;
}

/** The largest table migrate rewrites without --allow-rewrite. */
export interface RewriteLimit {
  rows: number;
  bytes: number;
}

export interface AdoptionOptions {
  /** The zone `timestamp without time zone` values were written in; default UTC. */
  legacyTimezone?: string;
  /**
   * Allow a conversion that rewrites tables: any zone other than UTC, and a column widening on
   * a table over `rewriteLimit`.
   */
  allowRewrite?: boolean;
  /**
   * The largest table a widening rewrites without `allowRewrite`; default
   * PIXCRAWLER_REWRITE_LIMIT_ROWS (100,000) and PIXCRAWLER_REWRITE_LIMIT_MB (64).
   */
  rewriteLimit?: Partial<RewriteLimit>;
}

export interface AdoptionReport {
  /** The PixCrawler tables found; empty means there is nothing to adopt. */
  existingTables: string[];
  /** Which tool made the database, as its catalog tells (origin.ts). */
  origin?: DatabaseOrigin;
  entries: AdoptionEntry[];
  /** The entries that keep the database from being adopted. */
  refusals: AdoptionEntry[];
  timezone: string;
  /** What the baseline step converts, table by table (empty when nothing needs converting). */
  conversions: TimestampConversion[];
  /** Columns the baseline step renames from a former name. */
  renames: ColumnRename[];
  /** Columns JobTablesAndConstraints widens (rewriting their table). */
  widenings: ColumnWidening[];
  rewriteLimit: RewriteLimit;
}

export const DEFAULT_LEGACY_TIMEZONE = 'UTC';

export const DEFAULT_REWRITE_LIMIT: RewriteLimit = { rows: 100_000, bytes: 64 * 1024 * 1024 };

/** The rewrite limit: the options', else PIXCRAWLER_REWRITE_LIMIT_ROWS / _MB, else the default. */
export function rewriteLimit(
  options: Partial<RewriteLimit> = {},
  env: NodeJS.ProcessEnv = process.env,
): RewriteLimit {
  return {
    rows:
      options.rows ??
      wholeNumberSetting('PIXCRAWLER_REWRITE_LIMIT_ROWS', DEFAULT_REWRITE_LIMIT.rows, env),
    bytes:
      options.bytes ??
      wholeNumberSetting(
        'PIXCRAWLER_REWRITE_LIMIT_MB',
        DEFAULT_REWRITE_LIMIT.bytes / 2 ** 20,
        env,
      ) *
        2 ** 20,
  };
}

/** Zones PostgreSQL treats as UTC when deciding whether timestamp → timestamptz rewrites. */
const UTC_ZONES = new Set(['utc', 'etc/utc', 'etc/uct', 'uct', 'zulu', 'etc/zulu', 'universal']);

/**
 * Whether timestamp → timestamptz rewrites the table: PostgreSQL 12 and newer change only the
 * catalog when the session's zone is UTC (the stored values mean the same instants); in any
 * other zone every value shifts, so every row is written anew.
 */
export function timestampConversionRewrites(timezone: string, serverVersion: number): boolean {
  return !(UTC_ZONES.has(timezone.toLowerCase()) && serverVersion >= 120000);
}

const TIMESTAMP_WITHOUT_ZONE = 'timestamp without time zone';
const TIMESTAMP_WITH_ZONE = 'timestamp with time zone';
/** Type changes that keep every value and need no person: integer → bigint. */
const WIDENINGS: ReadonlyArray<{ from: string; to: string }> = [{ from: 'integer', to: 'bigint' }];

export interface ClassifyInput {
  /** The shape the migrations upgrade from (legacyShape()). */
  legacy: ReadonlyMap<string, TableShape>;
  /** The shape they upgrade to (the entities). */
  target: ReadonlyMap<string, TableShape>;
  /** The database as it is. */
  live: ReadonlyMap<string, TableShape>;
  timezone: string;
  /** False when the server does not know the zone. */
  timezoneKnown: boolean;
  /** server_version_num: the catalog-only conversion needs 120000 or newer. */
  serverVersion: number;
  allowRewrite: boolean;
  /** Tables that are not the application's: the migrations table, alembic_version. */
  ignoredTables?: readonly string[];
  /** Former column names, `table.column` → names (legacy-schema.ts `formerNames`). */
  formerNames?: ReadonlyMap<string, readonly string[]>;
  /** Table sizes, for the rewrite limit; a table not here counts as empty. */
  sizes?: ReadonlyMap<string, TableSize>;
  rewriteLimit?: RewriteLimit;
}

const sameForeignKey = (a: ForeignKeyShape, b: ForeignKeyShape) =>
  sameList(a.columns, b.columns) &&
  a.referencedTable === b.referencedTable &&
  sameList(a.referencedColumns, b.referencedColumns) &&
  a.onDelete === b.onDelete &&
  a.onUpdate === b.onUpdate;

/**
 * What the migrations start from, for the tables the database has: the legacy shape of the five,
 * and for each job table that exists already the entities' columns and primary key (its keys,
 * indexes and checks are compared with the target's directly).
 */
function startingShape(input: ClassifyInput): Map<string, TableShape> {
  const shapes = new Map(input.legacy);
  for (const name of JOB_TABLE_NAMES) {
    const wanted = input.target.get(name);
    if (!input.live.has(name) || !wanted) continue;
    shapes.set(name, {
      ...wanted,
      foreignKeys: [],
      indexes: [],
      uniques: [],
      checks: [],
    });
  }
  return shapes;
}

/** One classified difference, named by its table and object. */
function entry(
  action: AdoptionAction,
  reason: AdoptionReason,
  difference: SchemaDifference,
  extra: Partial<AdoptionEntry> = {},
): AdoptionEntry {
  return {
    action,
    reason,
    table: difference.table,
    object: difference.name,
    difference,
    ...extra,
  };
}

/** The classification itself: pure, from the three shapes. */
export function classifyAdoption(
  input: ClassifyInput,
): Omit<AdoptionReport, 'existingTables' | 'origin'> {
  const { target, live } = input;
  const limit = input.rewriteLimit ?? DEFAULT_REWRITE_LIMIT;
  const entries: AdoptionEntry[] = [];
  const add = (...args: Parameters<typeof entry>) => entries.push(entry(...args));
  const sizeOf = (table: string): TableSize => input.sizes?.get(table) ?? { rows: 0, bytes: 0 };

  const starting = startingShape(input);
  const converting = new Map<string, string[]>();
  const renames: ColumnRename[] = [];
  const widenings: ColumnWidening[] = [];
  const differences = compareSchemas(starting, live, {
    defaults: false,
    primaryKeyName: false,
    extraTables: false,
  });
  // A missing column whose former name the table has: renamed, and that column is no extra.
  const renamedFrom = new Set<string>();
  for (const difference of differences) {
    if (difference.kind !== 'column' || difference.problem !== 'missing') continue;
    const expected = difference.expected!;
    const table = live.get(difference.table)!;
    const former = (input.formerNames?.get(`${difference.table}.${difference.name}`) ?? [])
      .map((name) => table.columns.find((column) => column.name === name))
      .find(
        (column) =>
          column !== undefined &&
          column.type === expected.type &&
          column.nullable === expected.nullable,
      );
    if (former) renamedFrom.add(`${difference.table}.${former.name}`);
  }

  for (const difference of differences) {
    switch (difference.kind) {
      case 'table':
        add('refuse', 'table-missing', difference);
        break;
      case 'column': {
        const { expected, actual } = difference;
        if (difference.problem === 'extra') {
          if (!renamedFrom.has(`${difference.table}.${difference.name}`)) {
            add('leave', 'extra-column', difference);
          }
        } else if (difference.problem === 'missing') {
          const from = (
            input.formerNames?.get(`${difference.table}.${difference.name}`) ?? []
          ).find((name) => renamedFrom.has(`${difference.table}.${name}`));
          if (from) {
            add('convert', 'column-renamed', difference, { replacement: difference.name });
            entries[entries.length - 1].object = from;
            renames.push({ table: difference.table, from, to: difference.name });
          } else add('refuse', 'column-missing', difference);
        } else if (difference.problem === 'nullability') {
          add('refuse', 'column-nullability', difference);
        } else if (
          difference.problem === 'type' &&
          expected?.type === TIMESTAMP_WITH_ZONE &&
          actual?.type === TIMESTAMP_WITHOUT_ZONE
        ) {
          add('convert', 'timestamp-without-time-zone', difference);
          converting.set(difference.table, [
            ...(converting.get(difference.table) ?? []),
            difference.name,
          ]);
        } else if (
          difference.problem === 'type' &&
          JOB_TABLE_NAMES.includes(difference.table) &&
          WIDENINGS.some((w) => w.from === actual?.type && w.to === expected?.type)
        ) {
          const size = sizeOf(difference.table);
          add('convert', 'column-widened', difference, { size });
          widenings.push({
            table: difference.table,
            column: difference.name,
            from: actual!.type,
            to: expected!.type,
            size,
          });
        } else add('refuse', 'column-type', difference);
        break;
      }
      case 'primary key':
        add(
          'refuse',
          difference.problem === 'missing' ? 'primary-key-missing' : 'primary-key-columns',
          difference,
        );
        break;
      // Named objects are compared with the target's below.
      case 'foreign key':
      case 'index':
      case 'unique constraint':
      case 'check':
        break;
    }
  }

  entries.push(...classifyNamedObjects(target, live));

  for (const name of PIXCRAWLER_TABLE_NAMES) {
    const table = live.get(name);
    const wanted = target.get(name);
    if (!table || !wanted?.primaryKey || !table.primaryKey) continue;
    if (JOB_TABLE_NAMES.includes(name)) {
      add(
        'convert',
        'table-adopted',
        { kind: 'table', table: name, name, problem: 'extra', actual: table },
        { size: sizeOf(name) },
      );
    }
    if (table.primaryKey.name !== wanted.primaryKey.name) {
      add(
        'convert',
        'primary-key-renamed',
        {
          kind: 'primary key',
          table: name,
          name: table.primaryKey.name,
          problem: 'name',
          expected: wanted.primaryKey,
          actual: table.primaryKey,
        },
        { replacement: wanted.primaryKey.name },
      );
    }
  }

  const ignored = new Set(input.ignoredTables ?? []);
  for (const table of live.values()) {
    if (PIXCRAWLER_TABLE_NAMES.includes(table.name) || ignored.has(table.name)) continue;
    add('leave', 'extra-table', {
      kind: 'table',
      table: table.name,
      name: table.name,
      problem: 'extra',
      actual: table,
    });
    for (const fk of table.foreignKeys) {
      if (!PIXCRAWLER_TABLE_NAMES.includes(fk.referencedTable)) continue;
      const into: ForeignKeyDifference = {
        kind: 'foreign key',
        table: table.name,
        name: fk.name,
        problem: 'extra',
        actual: fk,
      };
      add('leave', 'foreign-key-into-table', into);
    }
  }

  const rewrites = timestampConversionRewrites(input.timezone, input.serverVersion);
  const conversions = [...converting].map(([table, columns]) => ({
    table,
    columns,
    timezone: input.timezone,
    rewrites,
  }));
  if (conversions.length > 0 && !input.timezoneKnown) {
    entries.push({
      action: 'refuse',
      reason: 'unknown-timezone',
      table: conversions[0].table,
      object: input.timezone,
    });
  } else if (conversions.length > 0 && rewrites && !input.allowRewrite) {
    for (const conversion of conversions) {
      entries.push({
        action: 'refuse',
        reason: 'rewrite-not-allowed',
        table: conversion.table,
        object: conversion.columns.join(', '),
      });
    }
  }
  for (const widening of widenings) {
    const over = (widening.size.rows ?? 0) > limit.rows || widening.size.bytes > limit.bytes;
    if (over && !input.allowRewrite) {
      entries.push({
        action: 'refuse',
        reason: 'rewrite-over-limit',
        table: widening.table,
        object: widening.column,
        size: widening.size,
      });
    }
  }

  return {
    entries,
    refusals: entries.filter((entry) => entry.action === 'refuse'),
    timezone: input.timezone,
    conversions,
    renames,
    widenings,
    rewriteLimit: limit,
  };
}

/**
 * Foreign keys, indexes, checks and unique constraints on the seven tables, against the
 * entities' own. A name SPEC gives to an object is taken as it is when the definition is SPEC's
 * too, and refused when it is not (adding SPEC's would fail, or keep the wrong one), with one
 * exception that converts safely: a plain index where SPEC has a unique one on the same columns.
 * Under another name, an object with SPEC's definition is renamed, not built again.
 */
function classifyNamedObjects(
  target: ReadonlyMap<string, TableShape>,
  live: ReadonlyMap<string, TableShape>,
): AdoptionEntry[] {
  const entries: AdoptionEntry[] = [];
  // Every name SPEC gives, with its table: constraint and index names must not collide.
  const specNames = new Map<string, string>();
  for (const table of target.values()) {
    for (const object of [
      ...table.foreignKeys,
      ...table.indexes,
      ...table.checks,
      ...table.uniques,
    ]) {
      specNames.set(object.name, table.name);
    }
  }
  /** A live object as a difference the entries carry (what was found; the entities decide). */
  const found = <
    D extends ForeignKeyDifference | IndexDifference | CheckDifference | UniqueDifference,
  >(
    kind: D['kind'],
    table: string,
    actual: NonNullable<D['actual']>,
  ) => ({ kind, table, name: actual.name, problem: 'extra', actual }) as D;
  /** A live object named as SPEC names an object of another table. */
  const takenElsewhere = (table: string, name: string) =>
    specNames.has(name) && specNames.get(name) !== table;

  for (const name of PIXCRAWLER_TABLE_NAMES) {
    const table = live.get(name);
    const wanted = target.get(name);
    if (!table || !wanted) continue;
    const liveNames = new Set([
      ...table.foreignKeys.map((f) => f.name),
      ...table.indexes.map((i) => i.name),
    ]);

    const claimedForeignKeys = new Set<string>();
    for (const fk of table.foreignKeys) {
      const difference = found('foreign key', name, fk);
      const spec = wanted.foreignKeys.find((f) => sameList(f.columns, fk.columns));
      const namedAsSpec = spec !== undefined && fk.name === spec.name;
      if (takenElsewhere(name, fk.name) || (specNames.has(fk.name) && !namedAsSpec)) {
        entries.push(entry('refuse', 'name-taken', difference));
      } else if (!spec) {
        entries.push(entry('leave', 'extra-foreign-key', difference));
      } else if (!sameForeignKey(spec, fk)) {
        // SPEC's name with another rule or target cannot stay; under its own name it is replaced.
        entries.push(
          namedAsSpec
            ? entry('refuse', 'name-taken', difference)
            : entry('convert', 'foreign-key-replaced', difference, { replacement: spec.name }),
        );
      } else if (namedAsSpec) {
        entries.push(entry('keep', 'matches-spec', difference, { replacement: spec.name }));
        claimedForeignKeys.add(spec.name);
      } else if (!liveNames.has(spec.name) && !claimedForeignKeys.has(spec.name)) {
        entries.push(
          entry('convert', 'foreign-key-renamed', difference, { replacement: spec.name }),
        );
        claimedForeignKeys.add(spec.name);
      } else {
        // A second copy of one already kept or renamed: dropped once SPEC's is validated.
        entries.push(
          entry('convert', 'foreign-key-replaced', difference, { replacement: spec.name }),
        );
      }
    }

    const claimedIndexes = new Set<string>();
    for (const index of table.indexes) {
      const difference = found('index', name, index);
      const named = wanted.indexes.find((i) => i.name === index.name);
      if (takenElsewhere(name, index.name) || (!named && specNames.has(index.name))) {
        entries.push(entry('refuse', 'name-taken', difference));
      } else if (named && sameIndexDefinition(named, index)) {
        entries.push(entry('keep', 'matches-spec', difference, { replacement: named.name }));
        claimedIndexes.add(named.name);
      } else if (named && madeUniqueBy(named, index)) {
        entries.push(
          entry('convert', 'index-made-unique', difference, { replacement: named.name }),
        );
        claimedIndexes.add(named.name);
      } else if (named) {
        entries.push(entry('refuse', 'name-taken', difference));
      } else {
        const twin = wanted.indexes.find(
          (i) =>
            sameIndexDefinition(i, index) && !liveNames.has(i.name) && !claimedIndexes.has(i.name),
        );
        if (twin) {
          entries.push(entry('convert', 'index-renamed', difference, { replacement: twin.name }));
          claimedIndexes.add(twin.name);
        } else {
          const cover =
            index.unique || index.where !== null ? undefined : coveringIndex(wanted, index);
          entries.push(
            entry('leave', 'extra-index', difference, cover ? { coveredBy: cover.name } : {}),
          );
        }
      }
    }

    for (const check of table.checks) {
      const difference = found('check', name, check);
      const named = wanted.checks.find((c) => c.name === check.name);
      if (takenElsewhere(name, check.name) || (!named && specNames.has(check.name))) {
        entries.push(entry('refuse', 'name-taken', difference));
      } else if (
        named &&
        (!named.comparable ||
          withoutNotValid(named.definition) === withoutNotValid(check.definition))
      ) {
        entries.push(entry('keep', 'matches-spec', difference, { replacement: named.name }));
      } else if (named) {
        entries.push(entry('refuse', 'name-taken', difference));
      } else entries.push(entry('leave', 'extra-check', difference));
    }

    for (const unique of table.uniques) {
      const difference = found('unique constraint', name, unique);
      const index = wanted.indexes.find((i) => i.unique && sameList(i.columns, unique.columns));
      if (specNames.has(unique.name)) entries.push(entry('refuse', 'name-taken', difference));
      else if (index) {
        entries.push(
          entry('convert', 'unique-replaced-by-index', difference, { replacement: index.name }),
        );
      } else entries.push(entry('leave', 'extra-unique', difference));
    }
  }
  return entries;
}

/** A plain index where SPEC's of the same name is unique on the same columns. */
const madeUniqueBy = (spec: IndexShape, live: IndexShape) =>
  spec.unique &&
  !live.unique &&
  sameList(spec.columns, live.columns) &&
  spec.method === live.method &&
  (spec.where ?? null) === (live.where ?? null);

/** A SPEC index whose leading columns are all of `index`'s: it serves the same lookups. */
const coveringIndex = (wanted: TableShape, index: IndexShape) =>
  wanted.indexes.find(
    (spec) =>
      spec.where === null &&
      spec.method === index.method &&
      spec.columns.length >= index.columns.length &&
      sameList(spec.columns.slice(0, index.columns.length), index.columns),
  );

/** Former column names from legacy-schema.ts, by `table.column`. */
function formerColumnNames(): Map<string, readonly string[]> {
  return new Map(
    LEGACY_TABLES.flatMap((table) =>
      table.columns
        .filter((column) => column.formerNames?.length)
        .map((column) => [`${table.name}.${column.name}`, column.formerNames!] as const),
    ),
  );
}

/** Row estimate and size of the seven tables that exist. */
async function pixcrawlerTableSizes(dataSource: DataSource): Promise<Map<string, TableSize>> {
  const rows: { name: string; rows: string; bytes: string }[] = await dataSource.query(
    `SELECT c.relname AS name, c.reltuples::bigint AS rows, pg_table_size(c.oid) AS bytes
       FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
        AND c.relname = ANY($1)`,
    [PIXCRAWLER_TABLE_NAMES],
  );
  return new Map(
    rows.map((row) => [
      row.name,
      { rows: Number(row.rows) < 0 ? null : Number(row.rows), bytes: Number(row.bytes) },
    ]),
  );
}

/** Reads the database and classifies it; changes nothing. */
export async function checkAdoption(
  dataSource: DataSource,
  options: AdoptionOptions = {},
): Promise<AdoptionReport> {
  const limit = rewriteLimit(options.rewriteLimit);
  const schema = await currentSchema(dataSource);
  const live = await readSchemaCatalog(dataSource, schema);
  const present = await existingTables((sql, params) => dataSource.query(sql, params));
  const timezone = options.legacyTimezone?.trim() || DEFAULT_LEGACY_TIMEZONE;
  const [server]: { version: number; known: boolean }[] = await dataSource.query(
    `SELECT current_setting('server_version_num')::int AS version,
            EXISTS (SELECT 1 FROM pg_timezone_names WHERE lower(name) = lower($1)) AS known`,
    [timezone],
  );
  const classified = classifyAdoption({
    legacy: legacyShape(),
    target: expectedSchema(dataSource),
    live,
    timezone,
    timezoneKnown: server.known,
    serverVersion: server.version,
    allowRewrite: options.allowRewrite ?? false,
    ignoredTables: [
      dataSource.options.migrationsTableName ?? 'migrations',
      dataSource.options.metadataTableName ?? 'typeorm_metadata',
    ],
    formerNames: formerColumnNames(),
    sizes: await pixcrawlerTableSizes(dataSource),
    rewriteLimit: limit,
  });
  return { existingTables: present, origin: await detectOrigin(dataSource), ...classified };
}

/**
 * The baseline step's statements, in order, for one transaction: columns renamed from their
 * former names (catalog only), then the zone timestamp values are read in and one ALTER TABLE
 * per table (one lock, at most one rewrite, per table).
 */
export function baselineStatements(
  report: Pick<AdoptionReport, 'conversions' | 'renames'>,
): string[] {
  return [
    ...report.renames.map(
      ({ table, from, to }) =>
        `ALTER TABLE ${quoteIdentifier(table)} RENAME COLUMN ${quoteIdentifier(from)} TO ${quoteIdentifier(to)}`,
    ),
    ...conversionStatements(report.conversions),
  ];
}

/** The timestamp conversions' statements alone (see baselineStatements). */
export function conversionStatements(conversions: readonly TimestampConversion[]): string[] {
  if (conversions.length === 0) return [];
  return [
    `SET LOCAL TimeZone = ${quoteLiteral(conversions[0].timezone)}`,
    ...conversions.map(
      ({ table, columns }) =>
        `ALTER TABLE ${quoteIdentifier(table)} ` +
        columns
          .map((column) => `ALTER COLUMN ${quoteIdentifier(column)} TYPE ${TIMESTAMP_WITH_ZONE}`)
          .join(', '),
    ),
  ];
}
