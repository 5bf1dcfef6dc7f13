import type { DataSource } from 'typeorm';
import {
  compareSchemas,
  withoutNotValid,
  type CompareOptions,
  type SchemaDifference,
} from './schema-compare';
import { canonicalSpellings, expectedSchema } from './expected-schema';
import { incompleteMigrations, migrationStates } from './migration-states';
import { ALEMBIC_VERSION_TABLE, currentSchema, readSchemaCatalog } from './schema-catalog';
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
  /**
   * The migration that makes this missing object, when it is recorded as applied: what an
   * interrupted revert leaves. With repairedByMigrate, migrate runs it again; without, it must
   * be reverted (every step of a revert can run again) and migrated again.
   */
  recordedBy?: string;
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
  /**
   * Tables in the schema that no entity of the DataSource describes (an application's own, its
   * migrations table): listed, never checked, never a finding, so `--strict` passes beside them.
   */
  otherTables: string[];
}

const list = (items: readonly string[]) => `(${items.join(', ')})`;

const describeForeignKey = (fk: ForeignKeyShape) =>
  `${list(fk.columns)} → ${fk.referencedTable}${list(fk.referencedColumns)} ON DELETE ${fk.onDelete}`;
const describeIndex = (index: IndexShape) =>
  `${index.unique ? 'UNIQUE ' : ''}on ${list(index.columns)}` +
  (index.method === 'btree' ? '' : ` USING ${index.method}`) +
  (index.where ? ` WHERE ${index.where}` : '');

const NOT_IN_MODEL = 'not in the entities (left alone)';

/** The comparer's differences between the entities and the database, as verify's findings. */
export function verifyFindings(
  expected: ReadonlyMap<string, TableShape>,
  actual: ReadonlyMap<string, TableShape>,
  options: Pick<CompareOptions, 'ignoredTables'> = {},
): Finding[] {
  return compareSchemas(expected, actual, options).map(findingOf);
}

/**
 * What a difference between the entities and the database means for `verify`: anything the
 * entities describe that is missing or different is an error; anything the database holds that
 * they do not know is a warning, except a second foreign key on an entity's foreign-key column,
 * which silently changes what a delete does.
 */
export function findingOf(difference: SchemaDifference): Finding {
  const { table, name } = difference;
  const finding = (severity: Severity, message: string, repairedByMigrate = false): Finding => ({
    severity,
    table,
    kind: difference.kind,
    name,
    message,
    ...(repairedByMigrate && { repairedByMigrate }),
  });
  const notValid = (what: string) =>
    finding(
      'error',
      'is NOT VALID: existing rows were never checked against it ' +
        `(ALTER TABLE "${table}" VALIDATE CONSTRAINT "${what}" checks them)`,
      true,
    );
  switch (difference.kind) {
    case 'table':
      return difference.problem === 'missing'
        ? finding('error', 'missing: the table does not exist')
        : finding('warning', 'not described by any entity (left alone)');
    case 'column': {
      const { expected, actual } = difference;
      switch (difference.problem) {
        case 'missing':
          return finding('error', `missing (expected ${expected!.type})`);
        case 'extra':
          return finding('warning', `${NOT_IN_MODEL}: ${actual!.type}`);
        case 'type':
          return finding('error', `type is ${actual!.type}, expected ${expected!.type}`);
        case 'nullability':
          return finding(
            'error',
            expected!.nullable
              ? 'is NOT NULL, expected nullable'
              : 'is nullable, expected NOT NULL',
          );
        case 'default':
          return finding(
            'error',
            `default is ${actual!.default ?? '(none)'}, expected ${expected!.default ?? '(none)'}`,
          );
      }
      break;
    }
    case 'primary key': {
      const { expected, actual } = difference;
      switch (difference.problem) {
        case 'missing':
          return finding('error', `missing (expected on ${list(expected!.columns)})`);
        case 'name':
          return finding('error', `is named ${actual!.name}, expected ${expected!.name}`);
        case 'columns':
          return finding(
            'error',
            `is on ${list(actual!.columns)}, expected ${list(expected!.columns)}`,
          );
      }
      break;
    }
    case 'foreign key': {
      const { expected, actual, twin } = difference;
      switch (difference.problem) {
        case 'missing':
          return finding(
            'error',
            `missing (expected ${describeForeignKey(expected!)})` +
              (twin ? `; a foreign key on the same columns exists as ${twin.name}` : ''),
          );
        case 'extra':
          return finding('warning', `${NOT_IN_MODEL}: ${describeForeignKey(actual!)}`);
        case 'other':
          return finding(
            'error',
            `${describeForeignKey(actual!)} is a second foreign key on an entity's foreign-key ` +
              'column: it changes what a delete does (a NO ACTION or RESTRICT one makes a delete ' +
              'fail instead of cascading). Drop it: ' +
              `ALTER TABLE "${table}" DROP CONSTRAINT "${name}"`,
          );
        case 'target':
          return finding(
            'error',
            `is ${describeForeignKey(actual!)}, expected ${describeForeignKey(expected!)}`,
          );
        case 'on delete':
          return finding(
            'error',
            `is ON DELETE ${actual!.onDelete}, expected ON DELETE ${expected!.onDelete}`,
          );
        case 'on update':
          return finding(
            'error',
            `is ON UPDATE ${actual!.onUpdate}, expected ON UPDATE ${expected!.onUpdate}`,
          );
        case 'not valid':
          return notValid(name);
      }
      break;
    }
    case 'index': {
      const { expected, actual, twin } = difference;
      switch (difference.problem) {
        case 'missing':
          return finding(
            'error',
            `missing (expected ${describeIndex(expected!)})` +
              (twin ? `; an index on the same columns exists as ${twin.name}` : ''),
          );
        case 'extra':
          return finding(
            'warning',
            `${NOT_IN_MODEL}: ${describeIndex(actual!)}${actual!.valid === false ? ', and INVALID' : ''}`,
          );
        case 'definition':
          return finding(
            'error',
            `is ${describeIndex(actual!)}, expected ${describeIndex(expected!)}`,
          );
        case 'invalid':
          return finding(
            'error',
            'is INVALID (an interrupted CREATE INDEX CONCURRENTLY): queries do not use it ' +
              `(REINDEX INDEX CONCURRENTLY "${name}" rebuilds it)`,
            true,
          );
      }
      break;
    }
    case 'unique constraint': {
      const { expected, actual } = difference;
      switch (difference.problem) {
        case 'missing':
          return finding('error', `missing (expected on ${list(expected!.columns)})`);
        case 'extra':
          return finding('warning', `${NOT_IN_MODEL}: on ${list(actual!.columns)}`);
        case 'columns':
          return finding(
            'error',
            `is on ${list(actual!.columns)}, expected ${list(expected!.columns)}`,
          );
      }
      break;
    }
    case 'check': {
      const { expected, actual } = difference;
      switch (difference.problem) {
        case 'missing': {
          const definition = expected!.definition;
          const shown = /^CHECK /.test(definition) ? definition : `CHECK (${definition})`;
          return finding('error', `missing (expected ${shown})`);
        }
        case 'extra':
          return finding('warning', `${NOT_IN_MODEL}: ${actual!.definition}`);
        case 'definition':
          return finding(
            'error',
            `is ${withoutNotValid(actual!.definition)}, expected ${expected!.definition}`,
          );
        case 'not valid':
          return notValid(name);
      }
      break;
    }
  }
  throw new Error(`verify: no finding for ${JSON.stringify(difference)}`);
}

/**
 * TypeORM's drift check wants to drop every column, index and constraint it does not know.
 * Those objects are already reported as warnings, and the data layer deliberately leaves them
 * alone, so a drift statement that only drops one of them is a warning too; any other
 * statement is an error.
 */
function driftFindings(statements: string[], differences: SchemaDifference[]): Finding[] {
  // Objects the database has and the entities do not: `table.name` → the severity verify gave it.
  const knownExtras = new Map(
    differences
      .filter((d) => d.problem === 'extra' || d.problem === 'other')
      .map((d) => [`${d.table}.${d.name}`, findingOf(d).severity] as const),
  );
  const lastIdentifier = (text: string) => /"([^"]+)"\s*$/.exec(text.trim())?.[1];
  return statements.map((statement) => {
    const dropIndex = /^DROP INDEX\s+(?:"[^"]+"\.)?"([^"]+)"\s*$/i.exec(statement.trim());
    const alterDrop = /^ALTER TABLE\s+(.+?)\s+DROP (?:COLUMN|CONSTRAINT)\s+"([^"]+)"\s*$/i.exec(
      statement.trim(),
    );
    let extra: Severity | undefined;
    if (dropIndex) {
      extra = [...knownExtras].find(([key]) => key.endsWith(`.${dropIndex[1]}`))?.[1];
    } else if (alterDrop) {
      extra = knownExtras.get(`${lastIdentifier(alterDrop[1])}.${alterDrop[2]}`);
    }
    return {
      severity: extra ?? 'error',
      table: null,
      kind: 'drift',
      name: statement,
      message:
        extra === 'warning'
          ? 'TypeORM would drop an object the entities do not know (left alone)'
          : extra === 'error'
            ? 'TypeORM would drop the second foreign key reported above'
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
      message:
        "applied, but not in this code: your application's migration (give pixcrawler-db your " +
        'DataSource with -d), or a newer release ran it',
    });
  }
  return findings;
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
  const differences = compareSchemas(expected, actual, { extraTables: false });
  const bookkeeping = new Set([
    migrationsTable,
    dataSource.options.metadataTableName ?? 'typeorm_metadata',
    ALEMBIC_VERSION_TABLE,
  ]);
  const otherTables = [...actual.keys()]
    .filter((name) => !expected.has(name) && !bookkeeping.has(name))
    .sort();
  findings.push(...differences.map(findingOf));
  // A missing object whose migration is recorded as applied: say which, and whether migrate
  // repairs it (the finding stays one finding, so the counts mean what they did).
  for (const incomplete of await incompleteMigrations(dataSource)) {
    for (const object of incomplete.missing) {
      const finding = findings.find(
        (f) => f.severity === 'error' && f.table === object.table && f.name === object.name,
      );
      if (!finding) continue;
      finding.recordedBy = incomplete.name;
      if (incomplete.rerunnable) finding.repairedByMigrate = true;
    }
  }
  findings.push(...(await migrationFindings(dataSource)));
  const drift = options.drift === false ? [] : await schemaDrift(dataSource);
  findings.push(...driftFindings(drift, differences));

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
  return { schema, tables, findings, drift, errors, warnings, ok: errors === 0, otherTables };
}
