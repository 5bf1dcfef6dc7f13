import { timestampConversionRewrites } from '../upgrade/adoption';

/**
 * What one DDL statement does to the tables it touches: the lock it takes on each, and whether
 * it reads every row (a scan) or writes the table anew (a rewrite). The lock modes are
 * PostgreSQL's (see "Explicit Locking" in its manual, and plan.test.ts, which checks them
 * against pg_locks); a statement this does not recognise is reported as such, with the
 * strongest lock assumed.
 */

export type LockMode =
  'ACCESS EXCLUSIVE' | 'SHARE ROW EXCLUSIVE' | 'SHARE' | 'SHARE UPDATE EXCLUSIVE' | 'ROW SHARE';

/** Strongest first: the order in which one lock blocks more than the next. */
const STRENGTH: readonly LockMode[] = [
  'ACCESS EXCLUSIVE',
  'SHARE ROW EXCLUSIVE',
  'SHARE',
  'SHARE UPDATE EXCLUSIVE',
  'ROW SHARE',
];

export interface TableLock {
  table: string;
  mode: LockMode;
}

export interface StatementImpact {
  locks: TableLock[];
  /** Reads every row of the (first) locked table: VALIDATE, CREATE INDEX, a validated ADD. */
  scans: boolean;
  /** Writes the table anew (a type change PostgreSQL cannot make in the catalog only). */
  rewrites: boolean;
  /** A table this statement creates (it has no rows yet). */
  creates?: string;
  /** False when the statement is not one this module knows; the locks are then a guess. */
  recognised: boolean;
}

/** What the statements before this one (and the catalog) say about named objects. */
export interface ImpactContext {
  /** Foreign key name → its table and the table it references. */
  foreignKeys: Map<string, { table: string; referencedTable: string }>;
  /** Index name → its table. */
  indexes: Map<string, string>;
  /** Table → the tables its foreign keys reference (a DROP TABLE locks those too). */
  references: Map<string, string[]>;
  /** The session's TimeZone when the statement runs. */
  timezone: string;
  /** server_version_num */
  serverVersion: number;
}

const IDENT = String.raw`"((?:[^"]|"")+)"|(\w+)`;
const ident = (match: RegExpExecArray, at: number) =>
  (match[at] ?? match[at + 1]).replaceAll('""', '"');

function strongest(locks: TableLock[]): TableLock[] {
  const byTable = new Map<string, LockMode>();
  for (const { table, mode } of locks) {
    const held = byTable.get(table);
    if (!held || STRENGTH.indexOf(mode) < STRENGTH.indexOf(held)) byTable.set(table, mode);
  }
  return [...byTable].map(([table, mode]) => ({ table, mode }));
}

const unrecognised = (table?: string): StatementImpact => ({
  locks: table ? [{ table, mode: 'ACCESS EXCLUSIVE' }] : [],
  scans: false,
  rewrites: false,
  recognised: false,
});

export function statementImpact(statement: string, context: ImpactContext): StatementImpact {
  const sql = statement.trim().replace(/\s+/g, ' ');
  let match: RegExpExecArray | null;

  if ((match = new RegExp(`^CREATE TABLE (?:IF NOT EXISTS )?(?:${IDENT})`, 'i').exec(sql))) {
    const table = ident(match, 1);
    const referenced = [...sql.matchAll(new RegExp(`REFERENCES (?:${IDENT})`, 'gi'))].map((m) =>
      ident(m as RegExpExecArray, 1),
    );
    return {
      locks: strongest(
        referenced
          .filter((name) => name !== table)
          .map((name) => ({ table: name, mode: 'SHARE ROW EXCLUSIVE' as const })),
      ),
      scans: false,
      rewrites: false,
      creates: table,
      recognised: true,
    };
  }
  if (
    (match = new RegExp(
      `^CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?(?:IF NOT EXISTS )?(?:${IDENT}) ON (?:ONLY )?(?:${IDENT})`,
      'i',
    ).exec(sql))
  ) {
    const concurrently = Boolean(match[1]);
    return {
      locks: [{ table: ident(match, 4), mode: concurrently ? 'SHARE UPDATE EXCLUSIVE' : 'SHARE' }],
      scans: true,
      rewrites: false,
      recognised: true,
    };
  }
  if (
    (match = new RegExp(`^DROP INDEX (CONCURRENTLY )?(?:IF EXISTS )?(?:${IDENT})`, 'i').exec(sql))
  ) {
    const table = context.indexes.get(ident(match, 2));
    if (!table) return { locks: [], scans: false, rewrites: false, recognised: true };
    return {
      locks: [{ table, mode: match[1] ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE' }],
      scans: false,
      rewrites: false,
      recognised: true,
    };
  }
  if ((match = new RegExp(`^DROP TABLE (?:IF EXISTS )?(?:${IDENT})`, 'i').exec(sql))) {
    const table = ident(match, 1);
    return {
      locks: strongest(
        [table, ...(context.references.get(table) ?? [])].map((name) => ({
          table: name,
          mode: 'ACCESS EXCLUSIVE' as const,
        })),
      ),
      scans: false,
      rewrites: false,
      recognised: true,
    };
  }
  // Catalog only, and the locks they take block no reader or writer of the table: a brief
  // SHARE UPDATE EXCLUSIVE on the index alone (a rename, a comment on an index), ACCESS SHARE on
  // the table (a comment on a constraint).
  if (
    new RegExp(`^ALTER INDEX (?:IF EXISTS )?(?:${IDENT}) RENAME TO (?:${IDENT})$`, 'i').test(sql) ||
    /^COMMENT ON (INDEX|CONSTRAINT) /i.test(sql)
  ) {
    return { locks: [], scans: false, rewrites: false, recognised: true };
  }
  if (
    (match = new RegExp(`^ALTER TABLE (?:ONLY )?(?:IF EXISTS )?(?:${IDENT}) (.*)$`, 'i').exec(sql))
  ) {
    return alterTableImpact(ident(match, 1), match[3], context);
  }
  return unrecognised();
}

/** ALTER TABLE's actions, one after another: the strongest lock, any scan, any rewrite. */
function alterTableImpact(table: string, actions: string, context: ImpactContext): StatementImpact {
  const locks: TableLock[] = [];
  let scans = false;
  let rewrites = false;
  let recognised = true;
  for (const action of splitActions(actions)) {
    let match: RegExpExecArray | null;
    if (
      (match = new RegExp(
        `^ADD CONSTRAINT (?:${IDENT}) FOREIGN KEY .*? REFERENCES (?:${IDENT})`,
        'i',
      ).exec(action))
    ) {
      const referenced = ident(match, 3);
      locks.push({ table, mode: 'SHARE ROW EXCLUSIVE' });
      locks.push({ table: referenced, mode: 'SHARE ROW EXCLUSIVE' });
      if (!/ NOT VALID$/i.test(action)) scans = true;
    } else if (/^ADD CONSTRAINT .* (UNIQUE|PRIMARY KEY) USING INDEX /i.test(action)) {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
    } else if (/^ADD (CONSTRAINT \S+ )?(CHECK|UNIQUE|PRIMARY KEY)\b/i.test(action)) {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
      if (!/ NOT VALID$/i.test(action)) scans = true;
    } else if ((match = new RegExp(`^VALIDATE CONSTRAINT (?:${IDENT})`, 'i').exec(action))) {
      locks.push({ table, mode: 'SHARE UPDATE EXCLUSIVE' });
      const fk = context.foreignKeys.get(ident(match, 1));
      if (fk && fk.referencedTable !== table) {
        locks.push({ table: fk.referencedTable, mode: 'ROW SHARE' });
      }
      scans = true;
    } else if (
      (match = new RegExp(`^DROP CONSTRAINT (?:IF EXISTS )?(?:${IDENT})`, 'i').exec(action))
    ) {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
      const fk = context.foreignKeys.get(ident(match, 1));
      if (fk) locks.push({ table: fk.referencedTable, mode: 'ACCESS EXCLUSIVE' });
    } else if (/^RENAME (CONSTRAINT|COLUMN|TO)\b/i.test(action)) {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
    } else if (/^ALTER COLUMN \S+ (SET DATA )?TYPE timestamp(tz| with time zone)$/i.test(action)) {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
      if (timestampConversionRewrites(context.timezone, context.serverVersion)) rewrites = true;
    } else if (/^ALTER COLUMN \S+ (SET DATA )?TYPE bigint$/i.test(action)) {
      // Only integer columns are widened (adoption checks): int4 → int8 writes every row anew.
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
      rewrites = true;
    } else if (/^ALTER COLUMN \S+ (SET|DROP) (DEFAULT|NOT NULL)/i.test(action)) {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
      if (/ SET NOT NULL/i.test(action)) scans = true;
    } else {
      locks.push({ table, mode: 'ACCESS EXCLUSIVE' });
      recognised = false;
    }
  }
  return { locks: strongest(locks), scans, rewrites, recognised };
}

/** ALTER TABLE's comma-separated actions, commas inside parentheses and quotes left alone. */
function splitActions(actions: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let current = '';
  for (const char of actions) {
    if (quote) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '(') depth++;
    else if (char === ')') depth--;
    else if (char === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}
