import type { DataSource } from 'typeorm';
import { canonicalSpellings, expectedSchema, withoutNotValid } from './expected-schema';
import { migrationStates } from './migration-states';
import { currentSchema, readSchemaCatalog } from './schema-catalog';
import { schemaDrift } from './schema-drift';
import type { ForeignKeyShape, IndexShape, TableShape } from './schema-shape';

/**
 * `verify`: the live catalog compared with what the entities expect, object by object, plus
 * TypeORM's own drift check and the migration state. Anything the entities describe that is
 * missing or different is an error; anything the database holds that the entities do not know
 * (an extra table, column, index or constraint) is a warning: the upgrade leaves such objects
 * alone, and so does the data layer.
 */

export type Severity = 'error' | 'warning';

export type FindingKind =
  | 'table'
  | 'column'
  | 'primary key'
  | 'foreign key'
  | 'index'
  | 'unique constraint'
  | 'check'
  | 'drift'
  | 'migrations';

export interface Finding {
  severity: Severity;
  /** The table it concerns; null for drift statements and migration state. */
  table: string | null;
  kind: FindingKind;
  /** The object's name (table, column, constraint, index) or the drift statement. */
  name: string;
  message: string;
  /** Set when running the pending migrations (which repair what they own) fixes this. */
  repairedByMigrate?: boolean;
}

export interface TableSummary {
  name: string;
  /** Described by an entity. */
  expected: boolean;
  /** Present in the database. */
  present: boolean;
  columns: number;
  foreignKeys: number;
  indexes: number;
  checks: number;
}

export interface VerificationReport {
  schema: string;
  tables: TableSummary[];
  findings: Finding[];
  /** The SQL TypeORM's `migration:generate` would write (each statement is also a finding). */
  drift: string[];
  errors: number;
  warnings: number;
  /** No errors (warnings allowed). */
  ok: boolean;
}

export interface CompareOptions {
  /** Tables that are expected to exist without an entity: the migrations table. */
  ignoredTables?: string[];
}

const list = (items: readonly string[]) => `(${items.join(', ')})`;
const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((item, i) => item === b[i]);

const describeForeignKey = (fk: ForeignKeyShape) =>
  `${list(fk.columns)} → ${fk.referencedTable}${list(fk.referencedColumns)} ON DELETE ${fk.onDelete}`;
const describeIndex = (index: IndexShape) =>
  `${index.unique ? 'UNIQUE ' : ''}on ${list(index.columns)}` +
  (index.method === 'btree' ? '' : ` USING ${index.method}`) +
  (index.where ? ` WHERE ${index.where}` : '');

/** Compares two schemas (pure: no database), returning every difference as a finding. */
export function compareSchemas(
  expected: Map<string, TableShape>,
  actual: Map<string, TableShape>,
  options: CompareOptions = {},
): Finding[] {
  const findings: Finding[] = [];
  for (const table of expected.values()) {
    const live = actual.get(table.name);
    if (!live) {
      findings.push({
        severity: 'error',
        table: table.name,
        kind: 'table',
        name: table.name,
        message: 'missing: the table does not exist',
      });
      continue;
    }
    findings.push(...compareTable(table, live));
  }
  const ignored = new Set(options.ignoredTables ?? []);
  for (const table of actual.values()) {
    if (expected.has(table.name) || ignored.has(table.name)) continue;
    findings.push({
      severity: 'warning',
      table: table.name,
      kind: 'table',
      name: table.name,
      message: 'not described by any entity (left alone)',
    });
  }
  return findings;
}

function compareTable(expected: TableShape, live: TableShape): Finding[] {
  const findings: Finding[] = [];
  const add = (
    severity: Severity,
    kind: FindingKind,
    name: string,
    message: string,
    repairedByMigrate?: boolean,
  ) =>
    findings.push({
      severity,
      table: expected.name,
      kind,
      name,
      message,
      ...(repairedByMigrate && { repairedByMigrate }),
    });
  const notInModel = 'not in the entities (left alone)';

  // Columns
  for (const column of expected.columns) {
    const found = live.columns.find((c) => c.name === column.name);
    if (!found) {
      add('error', 'column', column.name, `missing (expected ${column.type})`);
      continue;
    }
    if (found.type !== column.type) {
      add('error', 'column', column.name, `type is ${found.type}, expected ${column.type}`);
    }
    if (found.nullable !== column.nullable) {
      add(
        'error',
        'column',
        column.name,
        column.nullable ? 'is NOT NULL, expected nullable' : 'is nullable, expected NOT NULL',
      );
    }
    if (found.default !== column.default) {
      add(
        'error',
        'column',
        column.name,
        `default is ${found.default ?? '(none)'}, expected ${column.default ?? '(none)'}`,
      );
    }
  }
  for (const column of live.columns) {
    if (!expected.columns.some((c) => c.name === column.name)) {
      add('warning', 'column', column.name, `${notInModel}: ${column.type}`);
    }
  }

  // Primary key
  if (expected.primaryKey) {
    const pk = expected.primaryKey;
    if (!live.primaryKey) {
      add('error', 'primary key', pk.name, `missing (expected on ${list(pk.columns)})`);
    } else {
      if (live.primaryKey.name !== pk.name) {
        add(
          'error',
          'primary key',
          pk.name,
          `is named ${live.primaryKey.name}, expected ${pk.name}`,
        );
      }
      if (!sameList(live.primaryKey.columns, pk.columns)) {
        add(
          'error',
          'primary key',
          pk.name,
          `is on ${list(live.primaryKey.columns)}, expected ${list(pk.columns)}`,
        );
      }
    }
  }

  // Foreign keys
  for (const fk of expected.foreignKeys) {
    const found = live.foreignKeys.find((f) => f.name === fk.name);
    if (!found) {
      const twin = live.foreignKeys.find((f) => sameList(f.columns, fk.columns));
      add(
        'error',
        'foreign key',
        fk.name,
        `missing (expected ${describeForeignKey(fk)})` +
          (twin ? `; a foreign key on the same columns exists as ${twin.name}` : ''),
      );
      continue;
    }
    if (
      !sameList(found.columns, fk.columns) ||
      found.referencedTable !== fk.referencedTable ||
      !sameList(found.referencedColumns, fk.referencedColumns)
    ) {
      add(
        'error',
        'foreign key',
        fk.name,
        `is ${describeForeignKey(found)}, expected ${describeForeignKey(fk)}`,
      );
    } else if (found.onDelete !== fk.onDelete) {
      add(
        'error',
        'foreign key',
        fk.name,
        `is ON DELETE ${found.onDelete}, expected ON DELETE ${fk.onDelete}`,
      );
    }
    if (found.onUpdate !== fk.onUpdate) {
      add(
        'error',
        'foreign key',
        fk.name,
        `is ON UPDATE ${found.onUpdate}, expected ON UPDATE ${fk.onUpdate}`,
      );
    }
    if (found.validated === false) {
      add(
        'error',
        'foreign key',
        fk.name,
        'is NOT VALID: existing rows were never checked against it ' +
          `(ALTER TABLE "${expected.name}" VALIDATE CONSTRAINT "${fk.name}" checks them)`,
        true,
      );
    }
  }
  for (const fk of live.foreignKeys) {
    if (!expected.foreignKeys.some((f) => f.name === fk.name)) {
      add('warning', 'foreign key', fk.name, `${notInModel}: ${describeForeignKey(fk)}`);
    }
  }

  // Indexes
  for (const index of expected.indexes) {
    const found = live.indexes.find((i) => i.name === index.name);
    if (!found) {
      const twin = live.indexes.find((i) => sameList(i.columns, index.columns));
      add(
        'error',
        'index',
        index.name,
        `missing (expected ${describeIndex(index)})` +
          (twin ? `; an index on the same columns exists as ${twin.name}` : ''),
      );
      continue;
    }
    if (
      !sameList(found.columns, index.columns) ||
      found.unique !== index.unique ||
      found.method !== index.method ||
      !samePredicate(found, index)
    ) {
      add(
        'error',
        'index',
        index.name,
        `is ${describeIndex(found)}, expected ${describeIndex(index)}`,
      );
    }
    if (found.valid === false) {
      add(
        'error',
        'index',
        index.name,
        'is INVALID (an interrupted CREATE INDEX CONCURRENTLY): queries do not use it ' +
          `(REINDEX INDEX CONCURRENTLY "${index.name}" rebuilds it)`,
        true,
      );
    }
  }
  for (const index of live.indexes) {
    if (!expected.indexes.some((i) => i.name === index.name)) {
      const invalid = index.valid === false ? ', and INVALID' : '';
      add('warning', 'index', index.name, `${notInModel}: ${describeIndex(index)}${invalid}`);
    }
  }

  // Unique constraints
  for (const unique of expected.uniques) {
    const found = live.uniques.find((u) => u.name === unique.name);
    if (!found) {
      add(
        'error',
        'unique constraint',
        unique.name,
        `missing (expected on ${list(unique.columns)})`,
      );
    } else if (!sameList(found.columns, unique.columns)) {
      add(
        'error',
        'unique constraint',
        unique.name,
        `is on ${list(found.columns)}, expected ${list(unique.columns)}`,
      );
    }
  }
  for (const unique of live.uniques) {
    if (!expected.uniques.some((u) => u.name === unique.name)) {
      add('warning', 'unique constraint', unique.name, `${notInModel}: on ${list(unique.columns)}`);
    }
  }

  // Checks
  for (const check of expected.checks) {
    const found = live.checks.find((c) => c.name === check.name);
    if (!found) {
      const shown = /^CHECK /.test(check.definition)
        ? check.definition
        : `CHECK (${check.definition})`;
      add('error', 'check', check.name, `missing (expected ${shown})`);
      continue;
    }
    if (
      check.comparable &&
      withoutNotValid(found.definition) !== withoutNotValid(check.definition)
    ) {
      add(
        'error',
        'check',
        check.name,
        `is ${withoutNotValid(found.definition)}, expected ${check.definition}`,
      );
    }
    if (found.validated === false) {
      add(
        'error',
        'check',
        check.name,
        'is NOT VALID: existing rows were never checked against it ' +
          `(ALTER TABLE "${expected.name}" VALIDATE CONSTRAINT "${check.name}" checks them)`,
        true,
      );
    }
  }
  for (const check of live.checks) {
    if (!expected.checks.some((c) => c.name === check.name)) {
      add('warning', 'check', check.name, `${notInModel}: ${check.definition}`);
    }
  }
  return findings;
}

/**
 * TypeORM's drift check wants to drop every column, index and constraint it does not know.
 * Those objects are already reported as warnings, and the data layer deliberately leaves them
 * alone, so a drift statement that only drops one of them is a warning too; any other
 * statement is an error.
 */
function driftFindings(statements: string[], findings: Finding[]): Finding[] {
  const knownExtras = new Set(
    findings
      .filter((f) => f.severity === 'warning' && f.table !== null)
      .map((f) => `${f.table}.${f.name}`),
  );
  const lastIdentifier = (text: string) => /"([^"]+)"\s*$/.exec(text.trim())?.[1];
  return statements.map((statement) => {
    const dropIndex = /^DROP INDEX\s+(?:"[^"]+"\.)?"([^"]+)"\s*$/i.exec(statement.trim());
    const alterDrop = /^ALTER TABLE\s+(.+?)\s+DROP (?:COLUMN|CONSTRAINT)\s+"([^"]+)"\s*$/i.exec(
      statement.trim(),
    );
    let extra = false;
    if (dropIndex) {
      extra = [...knownExtras].some((key) => key.endsWith(`.${dropIndex[1]}`));
    } else if (alterDrop) {
      extra = knownExtras.has(`${lastIdentifier(alterDrop[1])}.${alterDrop[2]}`);
    }
    return {
      severity: extra ? 'warning' : 'error',
      table: null,
      kind: 'drift',
      name: statement,
      message: extra
        ? 'TypeORM would drop an object the entities do not know (left alone)'
        : 'TypeORM finds the entities and the database differ',
    } satisfies Finding;
  });
}

async function migrationFindings(dataSource: DataSource): Promise<Finding[]> {
  const states = await migrationStates(dataSource);
  const findings: Finding[] = [];
  const pending = states.filter((state) => !state.applied);
  if (pending.length > 0) {
    findings.push({
      severity: 'error',
      table: null,
      kind: 'migrations',
      name: pending.map((state) => state.name).join(', '),
      message: `${pending.length} pending`,
      repairedByMigrate: true,
    });
  }
  for (const state of states.filter((s) => s.unknown)) {
    findings.push({
      severity: 'warning',
      table: null,
      kind: 'migrations',
      name: state.name,
      message: 'applied, but not in this code (a newer release ran it?)',
    });
  }
  return findings;
}

/** Same WHERE, or, when the expected one is not in PostgreSQL's spelling, both partial or not. */
function samePredicate(found: IndexShape, expected: IndexShape): boolean {
  if (expected.whereComparable === false)
    return (found.where === null) === (expected.where === null);
  return (found.where ?? null) === (expected.where ?? null);
}

/**
 * Puts the expected check definitions and partial-index predicates into PostgreSQL's spelling
 * so they compare with the catalog's. Returns a warning when the server cannot do it (a
 * read-only standby refuses temporary tables); checks are then compared by name only, and
 * partial indexes by being partial.
 */
async function spellAsPostgres(
  dataSource: DataSource,
  schema: string,
  expected: Map<string, TableShape>,
  actual: Map<string, TableShape>,
): Promise<Finding[]> {
  try {
    const canonical = await canonicalSpellings(
      dataSource,
      schema,
      expected,
      new Set(actual.keys()),
    );
    for (const table of expected.values()) {
      for (const check of table.checks) {
        const definition = canonical.checks.get(`${table.name}.${check.name}`);
        if (definition) Object.assign(check, { definition, comparable: true });
      }
      for (const index of table.indexes) {
        const where = canonical.indexPredicates.get(`${table.name}.${index.name}`);
        if (where) index.where = where;
      }
    }
    return [];
  } catch (error) {
    for (const table of expected.values()) {
      for (const index of table.indexes) if (index.where) index.whereComparable = false;
    }
    return [
      {
        severity: 'warning',
        table: null,
        kind: 'check',
        name: '(definitions)',
        message:
          'check definitions and partial-index predicates not compared (only names, and ' +
          'whether an index is partial): ' +
          (error instanceof Error ? error.message : String(error)),
      },
    ];
  }
}

export interface VerifyOptions {
  /** Also run TypeORM's drift check (default true). */
  drift?: boolean;
}

/** Verifies the database of an initialised DataSource against its entities. */
export async function verifySchema(
  dataSource: DataSource,
  options: VerifyOptions = {},
): Promise<VerificationReport> {
  const schema = await currentSchema(dataSource);
  const expected = expectedSchema(dataSource);
  const actual = await readSchemaCatalog(dataSource, schema);
  const migrationsTable = dataSource.options.migrationsTableName ?? 'migrations';
  const findings: Finding[] = await spellAsPostgres(dataSource, schema, expected, actual);
  findings.push(
    ...compareSchemas(expected, actual, {
      ignoredTables: [migrationsTable, dataSource.options.metadataTableName ?? 'typeorm_metadata'],
    }),
  );
  findings.push(...(await migrationFindings(dataSource)));
  const drift = options.drift === false ? [] : await schemaDrift(dataSource);
  findings.push(...driftFindings(drift, findings));

  // The entities' tables, and any other table only when there is something to say about it.
  const tables = [...new Set([...expected.keys(), ...actual.keys()])]
    .filter((name) => expected.has(name) || findings.some((f) => f.table === name))
    .sort()
    .map((name): TableSummary => {
      const shape = actual.get(name) ?? expected.get(name);
      return {
        name,
        expected: expected.has(name),
        present: actual.has(name),
        columns: shape?.columns.length ?? 0,
        foreignKeys: shape?.foreignKeys.length ?? 0,
        indexes: shape?.indexes.length ?? 0,
        checks: shape?.checks.length ?? 0,
      };
    });
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  return { schema, tables, findings, drift, errors, warnings, ok: errors === 0 };
}
