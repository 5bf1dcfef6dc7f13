import type { DataSource } from 'typeorm';
import { quoteIdentifier, quoteLiteral } from '../sql/quote';
import { expectedSchema } from '../inspect/expected-schema';
import { legacyShape, LEGACY_TABLE_NAMES, TABLES_THE_CHANGE_CREATES } from './legacy-schema';
import { currentSchema, readSchemaCatalog } from '../inspect/schema-catalog';
import type { TableShape } from '../inspect/schema-shape';
import {
  compareSchemas,
  sameList,
  type ForeignKeyDifference,
  type SchemaDifference,
} from '../inspect/schema-compare';

/**
 * Adopting an existing database (`migrate --baseline`, `plan --baseline`): every difference
 * between its five tables and the legacy shape the migrations upgrade from, classified.
 *
 * - convert: the upgrade resolves it in place. Timestamps without time zone become timestamptz
 *   in the baseline step, before LegacySchema is recorded; foreign keys of the ORM's on our FK
 *   columns are replaced by the migrations (SPEC's added NOT VALID, validated, the old one
 *   dropped); a unique constraint on profiles.email under any name gives way to
 *   ix_profiles_email; primary keys are renamed.
 * - leave: the upgrade does not touch it (extra columns, tables, indexes, checks, foreign keys
 *   elsewhere, and foreign keys from other tables into ours).
 * - refuse: nothing safe resolves it (a missing column, another type); the operator must.
 *
 * The entries are data with a reason code; the CLI words them (src/cli/reports/adoption.ts).
 */

export type AdoptionAction = 'convert' | 'leave' | 'refuse';

export type AdoptionReason =
  // convert
  | 'timestamp-without-time-zone'
  | 'foreign-key-replaced'
  | 'unique-replaced-by-index'
  | 'primary-key-renamed'
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
  | 'table-exists'
  | 'name-taken'
  | 'unknown-timezone'
  | 'rewrite-not-allowed';

export interface AdoptionEntry {
  action: AdoptionAction;
  reason: AdoptionReason;
  table: string;
  /** The column, constraint or index concerned; the table's name for a whole table. */
  object: string;
  /** The comparer's difference behind the entry (what was expected and what was found). */
  difference?: SchemaDifference;
  /** What takes the object's place: SPEC's foreign key, index or primary key name. */
  replacement?: string;
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

export interface AdoptionOptions {
  /** The zone `timestamp without time zone` values were written in; default UTC. */
  legacyTimezone?: string;
  /** Allow a conversion that rewrites tables (any zone other than UTC). */
  allowRewrite?: boolean;
}

export interface AdoptionReport {
  /** The legacy tables found; empty means there is nothing to adopt. */
  existingTables: string[];
  entries: AdoptionEntry[];
  /** The entries that keep the database from being adopted. */
  refusals: AdoptionEntry[];
  timezone: string;
  /** What the baseline step converts, table by table (empty when nothing needs converting). */
  conversions: TimestampConversion[];
}

export const DEFAULT_LEGACY_TIMEZONE = 'UTC';

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
  /** Tables that are not the application's: the migrations table. */
  ignoredTables?: readonly string[];
}

/** The classification itself: pure, from the three shapes. */
export function classifyAdoption(input: ClassifyInput): Omit<AdoptionReport, 'existingTables'> {
  const { legacy, target, live } = input;
  const entries: AdoptionEntry[] = [];
  const add = (
    action: AdoptionAction,
    reason: AdoptionReason,
    difference: SchemaDifference,
    replacement?: string,
  ) =>
    entries.push({
      action,
      reason,
      table: difference.table,
      object: difference.name,
      difference,
      ...(replacement ? { replacement } : {}),
    });

  const converting = new Map<string, string[]>();
  const differences = compareSchemas(legacy, live, {
    defaults: false,
    primaryKeyName: false,
    extraTables: false,
  });
  for (const difference of differences) {
    const wanted = target.get(difference.table);
    switch (difference.kind) {
      case 'table':
        add('refuse', 'table-missing', difference);
        break;
      case 'column':
        if (difference.problem === 'extra') add('leave', 'extra-column', difference);
        else if (difference.problem === 'missing') add('refuse', 'column-missing', difference);
        else if (difference.problem === 'nullability')
          add('refuse', 'column-nullability', difference);
        else if (
          difference.problem === 'type' &&
          difference.expected?.type === TIMESTAMP_WITH_ZONE &&
          difference.actual?.type === TIMESTAMP_WITHOUT_ZONE
        ) {
          add('convert', 'timestamp-without-time-zone', difference);
          converting.set(difference.table, [
            ...(converting.get(difference.table) ?? []),
            difference.name,
          ]);
        } else add('refuse', 'column-type', difference);
        break;
      case 'primary key':
        add(
          'refuse',
          difference.problem === 'missing' ? 'primary-key-missing' : 'primary-key-columns',
          difference,
        );
        break;
      case 'foreign key': {
        // The legacy shape has none: every one is extra. On a column the target gives a
        // foreign key, it is replaced by that one; elsewhere it is left alone.
        const fk = difference.actual!;
        const spec = wanted?.foreignKeys.find((f) => sameList(f.columns, fk.columns));
        if (spec) add('convert', 'foreign-key-replaced', difference, spec.name);
        else add('leave', 'extra-foreign-key', difference);
        break;
      }
      case 'unique constraint': {
        if (difference.problem !== 'extra') break; // the legacy name missing: no matter
        const unique = difference.actual!;
        const index = wanted?.indexes.find((i) => i.unique && sameList(i.columns, unique.columns));
        if (index) add('convert', 'unique-replaced-by-index', difference, index.name);
        else add('leave', 'extra-unique', difference);
        break;
      }
      case 'index':
        add('leave', 'extra-index', difference);
        break;
      case 'check':
        add('leave', 'extra-check', difference);
        break;
    }
  }

  for (const name of LEGACY_TABLE_NAMES) {
    const table = live.get(name);
    const wanted = target.get(name);
    if (!table || !wanted?.primaryKey || !table.primaryKey) continue;
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
        wanted.primaryKey.name,
      );
    }
  }

  entries.push(...nameCollisions(target, live));

  const ignored = new Set(input.ignoredTables ?? []);
  for (const table of live.values()) {
    if (LEGACY_TABLE_NAMES.includes(table.name) || ignored.has(table.name)) continue;
    if (TABLES_THE_CHANGE_CREATES.includes(table.name)) {
      add('refuse', 'table-exists', {
        kind: 'table',
        table: table.name,
        name: table.name,
        problem: 'extra',
        actual: table,
      });
      continue;
    }
    add('leave', 'extra-table', {
      kind: 'table',
      table: table.name,
      name: table.name,
      problem: 'extra',
      actual: table,
    });
    for (const fk of table.foreignKeys) {
      if (!LEGACY_TABLE_NAMES.includes(fk.referencedTable)) continue;
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

  return {
    entries,
    refusals: entries.filter((entry) => entry.action === 'refuse'),
    timezone: input.timezone,
    conversions,
  };
}

/**
 * A constraint or index on the five tables under a name the migrations give to something
 * else: adding theirs would fail half way, or (an index) keep the wrong one.
 */
function nameCollisions(
  target: ReadonlyMap<string, TableShape>,
  live: ReadonlyMap<string, TableShape>,
): AdoptionEntry[] {
  const names = new Set<string>();
  for (const table of target.values()) {
    for (const object of [
      ...table.foreignKeys,
      ...table.indexes,
      ...table.checks,
      ...table.uniques,
    ]) {
      names.add(object.name);
    }
  }
  const entries: AdoptionEntry[] = [];
  for (const name of LEGACY_TABLE_NAMES) {
    const table = live.get(name);
    if (!table) continue;
    for (const object of [
      ...table.foreignKeys,
      ...table.indexes,
      ...table.checks,
      ...table.uniques,
    ]) {
      if (names.has(object.name)) {
        entries.push({ action: 'refuse', reason: 'name-taken', table: name, object: object.name });
      }
    }
  }
  return entries;
}

/** Reads the database and classifies it; changes nothing. */
export async function checkAdoption(
  dataSource: DataSource,
  options: AdoptionOptions = {},
): Promise<AdoptionReport> {
  const schema = await currentSchema(dataSource);
  const live = await readSchemaCatalog(dataSource, schema);
  const existingTables = LEGACY_TABLE_NAMES.filter((name) => live.has(name));
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
  });
  return { existingTables, ...classified };
}

/**
 * The baseline step's statements, in order, for one transaction: the zone the values are read
 * in, then one ALTER TABLE per table (one lock, at most one rewrite, per table).
 */
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
