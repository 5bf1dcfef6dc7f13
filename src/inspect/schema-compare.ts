import type {
  CheckShape,
  ColumnShape,
  ForeignKeyShape,
  IndexShape,
  PrimaryKeyShape,
  TableShape,
  UniqueShape,
} from './schema-shape';

/**
 * The one schema comparer: an expected shape against a live one, one comparer per kind of
 * object, returning typed differences and no wording. `verify` turns the differences between the
 * entities and the catalog into findings; adoption (`migrate --baseline`, `plan`) classifies the
 * differences between the legacy shape and the catalog. What each side means (error, warning,
 * converted, left alone, refused) is the caller's business.
 */

interface DifferenceOf<K extends string, P extends string, S> {
  kind: K;
  table: string;
  /** The object's name: the expected one's when there is one, else the live one's. */
  name: string;
  problem: P;
  expected?: S;
  actual?: S;
}

export type TableDifference = DifferenceOf<'table', 'missing' | 'extra', TableShape>;

export type ColumnDifference = DifferenceOf<
  'column',
  'missing' | 'extra' | 'type' | 'nullability' | 'default',
  ColumnShape
>;

export type PrimaryKeyDifference = DifferenceOf<
  'primary key',
  'missing' | 'name' | 'columns',
  PrimaryKeyShape
>;

export type ForeignKeyDifference = DifferenceOf<
  'foreign key',
  /**
   * `other`: a foreign key the expected side does not have, on the same columns as one it
   * has (a second rule for what a delete does); `extra`: one on columns the expected side
   * has no foreign key on.
   */
  'missing' | 'extra' | 'other' | 'target' | 'on delete' | 'on update' | 'not valid',
  ForeignKeyShape
> & {
  /** missing: a live foreign key on the same columns under another name. */
  twin?: ForeignKeyShape;
};

export type IndexDifference = DifferenceOf<
  'index',
  'missing' | 'extra' | 'definition' | 'invalid',
  IndexShape
> & {
  /** missing: a live index on the same columns under another name. */
  twin?: IndexShape;
};

export type UniqueDifference = DifferenceOf<
  'unique constraint',
  'missing' | 'extra' | 'columns',
  UniqueShape
>;

export type CheckDifference = DifferenceOf<
  'check',
  'missing' | 'extra' | 'definition' | 'not valid',
  CheckShape
>;

export type SchemaDifference =
  | TableDifference
  | ColumnDifference
  | PrimaryKeyDifference
  | ForeignKeyDifference
  | IndexDifference
  | UniqueDifference
  | CheckDifference;

export type DifferenceKind = SchemaDifference['kind'];

export interface CompareOptions {
  /** Live tables that are expected to exist without being described: the migrations table. */
  ignoredTables?: readonly string[];
  /** Report live tables the expected side does not describe (default true). */
  extraTables?: boolean;
  /** Compare column defaults (default true). The legacy shape does not fix them. */
  defaults?: boolean;
  /** Compare the primary key's name, not only its columns (default true). */
  primaryKeyName?: boolean;
}

export const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((item, i) => item === b[i]);

/** Compares two schemas (pure: no database), every difference in table order, kind by kind. */
export function compareSchemas(
  expected: ReadonlyMap<string, TableShape>,
  actual: ReadonlyMap<string, TableShape>,
  options: CompareOptions = {},
): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  for (const table of expected.values()) {
    const live = actual.get(table.name);
    if (!live) {
      differences.push({
        kind: 'table',
        table: table.name,
        name: table.name,
        problem: 'missing',
        expected: table,
      });
      continue;
    }
    differences.push(...compareTable(table, live, options));
  }
  if (options.extraTables !== false) {
    const ignored = new Set(options.ignoredTables ?? []);
    for (const table of actual.values()) {
      if (expected.has(table.name) || ignored.has(table.name)) continue;
      differences.push({
        kind: 'table',
        table: table.name,
        name: table.name,
        problem: 'extra',
        actual: table,
      });
    }
  }
  return differences;
}

/** One table: columns, primary key, foreign keys, indexes, unique constraints, checks. */
export function compareTable(
  expected: TableShape,
  live: TableShape,
  options: CompareOptions = {},
): SchemaDifference[] {
  return [
    ...compareColumns(expected, live, options),
    ...comparePrimaryKey(expected, live, options),
    ...compareForeignKeys(expected, live),
    ...compareIndexes(expected, live),
    ...compareUniques(expected, live),
    ...compareChecks(expected, live),
  ];
}

/**
 * Matches expected objects with live ones by name: the pairs, the expected ones with no live
 * object of that name, and the live ones with no expected object of that name.
 */
function matchByName<S extends { name: string }>(expected: readonly S[], live: readonly S[]) {
  const liveByName = new Map(live.map((item) => [item.name, item]));
  const expectedNames = new Set(expected.map((item) => item.name));
  return {
    pairs: expected.flatMap((item) => {
      const found = liveByName.get(item.name);
      return found ? [[item, found] as const] : [];
    }),
    missing: expected.filter((item) => !liveByName.has(item.name)),
    extra: live.filter((item) => !expectedNames.has(item.name)),
  };
}

export function compareColumns(
  expected: TableShape,
  live: TableShape,
  options: CompareOptions = {},
): ColumnDifference[] {
  const differences: ColumnDifference[] = [];
  const add = (problem: ColumnDifference['problem'], column: ColumnShape, found?: ColumnShape) =>
    differences.push({
      kind: 'column',
      table: expected.name,
      name: column.name,
      problem,
      ...(problem === 'extra' ? { actual: column } : { expected: column, actual: found }),
    });
  const { pairs, missing, extra } = matchByName(expected.columns, live.columns);
  // In the expected side's column order, each missing column where it belongs.
  for (const column of expected.columns) {
    if (missing.includes(column)) {
      add('missing', column);
      continue;
    }
    const [, found] = pairs.find(([wanted]) => wanted === column)!;
    if (found.type !== column.type) add('type', column, found);
    if (found.nullable !== column.nullable) add('nullability', column, found);
    if (options.defaults !== false && found.default !== column.default) {
      add('default', column, found);
    }
  }
  for (const column of extra) add('extra', column);
  return differences;
}

export function comparePrimaryKey(
  expected: TableShape,
  live: TableShape,
  options: CompareOptions = {},
): PrimaryKeyDifference[] {
  const pk = expected.primaryKey;
  if (!pk) return [];
  const base = { kind: 'primary key', table: expected.name, name: pk.name, expected: pk } as const;
  const found = live.primaryKey;
  if (!found) return [{ ...base, problem: 'missing' }];
  const differences: PrimaryKeyDifference[] = [];
  if (options.primaryKeyName !== false && found.name !== pk.name) {
    differences.push({ ...base, problem: 'name', actual: found });
  }
  if (!sameList(found.columns, pk.columns)) {
    differences.push({ ...base, problem: 'columns', actual: found });
  }
  return differences;
}

export function compareForeignKeys(expected: TableShape, live: TableShape): ForeignKeyDifference[] {
  const differences: ForeignKeyDifference[] = [];
  const base = { kind: 'foreign key', table: expected.name } as const;
  const { pairs, missing, extra } = matchByName(expected.foreignKeys, live.foreignKeys);
  for (const fk of expected.foreignKeys) {
    if (missing.includes(fk)) {
      const twin = live.foreignKeys.find((f) => sameList(f.columns, fk.columns));
      differences.push({
        ...base,
        name: fk.name,
        problem: 'missing',
        expected: fk,
        ...(twin ? { twin } : {}),
      });
      continue;
    }
    const [, found] = pairs.find(([wanted]) => wanted === fk)!;
    const pair = { ...base, name: fk.name, expected: fk, actual: found };
    if (
      !sameList(found.columns, fk.columns) ||
      found.referencedTable !== fk.referencedTable ||
      !sameList(found.referencedColumns, fk.referencedColumns)
    ) {
      differences.push({ ...pair, problem: 'target' });
    } else if (found.onDelete !== fk.onDelete) {
      differences.push({ ...pair, problem: 'on delete' });
    }
    if (found.onUpdate !== fk.onUpdate) differences.push({ ...pair, problem: 'on update' });
    if (found.validated === false) differences.push({ ...pair, problem: 'not valid' });
  }
  for (const fk of extra) {
    const onExpectedColumns = expected.foreignKeys.some((f) => sameList(f.columns, fk.columns));
    differences.push({
      ...base,
      name: fk.name,
      problem: onExpectedColumns ? 'other' : 'extra',
      actual: fk,
    });
  }
  return differences;
}

/**
 * Same WHERE; when one side's is not in PostgreSQL's spelling (`whereComparable: false`, on a
 * standby), whether both are partial.
 */
const samePredicate = (a: IndexShape, b: IndexShape) =>
  a.whereComparable === false || b.whereComparable === false
    ? (a.where === null) === (b.where === null)
    : (a.where ?? null) === (b.where ?? null);

/** Same columns, uniqueness, access method and predicate: one index could stand for the other. */
export const sameIndexDefinition = (a: IndexShape, b: IndexShape) =>
  sameList(a.columns, b.columns) &&
  a.unique === b.unique &&
  a.method === b.method &&
  samePredicate(a, b);

export function compareIndexes(expected: TableShape, live: TableShape): IndexDifference[] {
  const differences: IndexDifference[] = [];
  const base = { kind: 'index', table: expected.name } as const;
  const { pairs, missing, extra } = matchByName(expected.indexes, live.indexes);
  for (const index of expected.indexes) {
    if (missing.includes(index)) {
      const twin = live.indexes.find((i) => sameList(i.columns, index.columns));
      differences.push({
        ...base,
        name: index.name,
        problem: 'missing',
        expected: index,
        ...(twin ? { twin } : {}),
      });
      continue;
    }
    const [, found] = pairs.find(([wanted]) => wanted === index)!;
    const pair = { ...base, name: index.name, expected: index, actual: found };
    if (!sameIndexDefinition(found, index)) differences.push({ ...pair, problem: 'definition' });
    if (found.valid === false) differences.push({ ...pair, problem: 'invalid' });
  }
  for (const index of extra) {
    differences.push({ ...base, name: index.name, problem: 'extra', actual: index });
  }
  return differences;
}

export function compareUniques(expected: TableShape, live: TableShape): UniqueDifference[] {
  const differences: UniqueDifference[] = [];
  const base = { kind: 'unique constraint', table: expected.name } as const;
  const { pairs, missing, extra } = matchByName(expected.uniques, live.uniques);
  for (const unique of expected.uniques) {
    if (missing.includes(unique)) {
      differences.push({ ...base, name: unique.name, problem: 'missing', expected: unique });
      continue;
    }
    const [, found] = pairs.find(([wanted]) => wanted === unique)!;
    if (!sameList(found.columns, unique.columns)) {
      differences.push({
        ...base,
        name: unique.name,
        problem: 'columns',
        expected: unique,
        actual: found,
      });
    }
  }
  for (const unique of extra) {
    differences.push({ ...base, name: unique.name, problem: 'extra', actual: unique });
  }
  return differences;
}

/** `pg_get_constraintdef` appends ` NOT VALID` to unvalidated constraints; validity is compared apart. */
export const withoutNotValid = (definition: string): string =>
  definition.replace(/\s+NOT VALID$/, '');

export function compareChecks(expected: TableShape, live: TableShape): CheckDifference[] {
  const differences: CheckDifference[] = [];
  const base = { kind: 'check', table: expected.name } as const;
  const { pairs, missing, extra } = matchByName(expected.checks, live.checks);
  for (const check of expected.checks) {
    if (missing.includes(check)) {
      differences.push({ ...base, name: check.name, problem: 'missing', expected: check });
      continue;
    }
    const [, found] = pairs.find(([wanted]) => wanted === check)!;
    const pair = { ...base, name: check.name, expected: check, actual: found };
    if (
      check.comparable &&
      withoutNotValid(found.definition) !== withoutNotValid(check.definition)
    ) {
      differences.push({ ...pair, problem: 'definition' });
    }
    if (found.validated === false) differences.push({ ...pair, problem: 'not valid' });
  }
  for (const check of extra) {
    differences.push({ ...base, name: check.name, problem: 'extra', actual: check });
  }
  return differences;
}
