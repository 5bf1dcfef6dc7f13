import type { DataSource } from 'typeorm';
import { repairOfCheck, type CheckRepair } from '../entities/checks';
import {
  SAFE_CRAWL_JOB_STATUS,
  SAFE_EXPORT_FORMAT,
  SAFE_JOB_STATUS,
  SAFE_PROFILE_ROLE,
  SAFE_PROJECT_STATUS,
} from '../entities/value-sets';
import { existingTables, PIXCRAWLER_TABLE_NAMES } from './legacy-schema';
import { quoteIdentifier } from '../sql/quote';

/**
 * Preflight's rules: every foreign key, check and unique index the entities declare on the tables
 * that exist already (the five legacy ones; all seven on a database PixCrawler's Alembic 001
 * built), the rows breaking each, and the repair `--fix` makes. The rules come from the entity
 * metadata, so this list cannot drift from the model. The fix is in preflight.ts, its backup in
 * preflight-backup.ts.
 */

export type PreflightRule =
  | {
      kind: 'foreign-key';
      name: string;
      table: string;
      column: string;
      referencedTable: string;
      referencedColumn: string;
      onDelete: string;
    }
  | {
      kind: 'check';
      name: string;
      table: string;
      expression: string;
      /** Declared with the check (entities/checks.ts); undefined when it needs a person. */
      repair?: CheckRepair;
    }
  | { kind: 'unique'; name: string; table: string; columns: string[] };

export interface PreflightResult {
  rule: PreflightRule;
  /** Rows that break the rule now. */
  count: number;
  /** The first few of them, by id. */
  sampleIds: Array<string | number>;
}

export interface PreflightReport {
  results: PreflightResult[];
  /** The results with at least one breaking row. */
  broken: PreflightResult[];
}

const SAMPLE_SIZE = 5;

/**
 * The value an unknown status or role becomes under `--fix`, by `table.column` (declared with
 * each check, see `SAFE_PROFILE_ROLE` and its siblings in value-sets.ts for why each).
 */
export const SAFE_VALUES: Readonly<Record<string, string>> = {
  'profiles.role': SAFE_PROFILE_ROLE,
  'projects.status': SAFE_PROJECT_STATUS,
  'crawl_jobs.status': SAFE_CRAWL_JOB_STATUS,
  'validation_jobs.status': SAFE_JOB_STATUS,
  'export_jobs.status': SAFE_JOB_STATUS,
  'export_jobs.format': SAFE_EXPORT_FORMAT,
};

/** Every FK, check and unique index the entities declare on the seven tables, parents first. */
export function preflightRules(dataSource: DataSource): PreflightRule[] {
  const rules: PreflightRule[] = [];
  const tables = dataSource.entityMetadatas
    .filter((metadata) => PIXCRAWLER_TABLE_NAMES.includes(metadata.tableName))
    .sort(
      (a, b) =>
        PIXCRAWLER_TABLE_NAMES.indexOf(a.tableName) - PIXCRAWLER_TABLE_NAMES.indexOf(b.tableName),
    );
  for (const metadata of tables) {
    const table = metadata.tableName;
    for (const fk of metadata.foreignKeys) {
      rules.push({
        kind: 'foreign-key',
        name: fk.name,
        table,
        column: fk.columnNames[0],
        referencedTable: fk.referencedTablePath,
        referencedColumn: fk.referencedColumnNames[0],
        onDelete: fk.onDelete ?? 'NO ACTION',
      });
    }
    for (const check of metadata.checks) {
      rules.push({
        kind: 'check',
        name: check.name,
        table,
        expression: check.expression!,
        repair: repairOfCheck(check.name),
      });
    }
    for (const index of metadata.indices.filter((i) => i.isUnique)) {
      rules.push({
        kind: 'unique',
        name: index.name,
        table,
        columns: index.columns.map((column) => column.databaseName),
      });
    }
  }
  return rules;
}

/** The WHERE condition (on alias `t`) that selects the rows breaking a rule. */
export function breakingCondition(rule: PreflightRule): string {
  switch (rule.kind) {
    case 'foreign-key':
      return `t.${quoteIdentifier(rule.column)} IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ${quoteIdentifier(rule.referencedTable)} p
         WHERE p.${quoteIdentifier(rule.referencedColumn)} = t.${quoteIdentifier(rule.column)})`;
    case 'check':
      // A CHECK fails only when its expression is FALSE; NULL passes, and so it does here.
      return `NOT (${rule.expression})`;
    case 'unique': {
      const columns = rule.columns.map((c) => quoteIdentifier(c)).join(', ');
      return `(${rule.columns.map((c) => `t.${quoteIdentifier(c)}`).join(', ')}) IN (
        SELECT ${columns} FROM ${quoteIdentifier(rule.table)} GROUP BY ${columns} HAVING count(*) > 1)`;
    }
  }
}

export type Query = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/**
 * Counts the rows breaking each rule. Rules on a table that does not exist (a new database, or
 * one the upgrade has not reached) are left out: there is nothing to break them.
 */
export async function runPreflight(dataSource: DataSource): Promise<PreflightReport> {
  const query: Query = (sql, params) => dataSource.query(sql, params);
  const existing = new Set(await existingTables(query));
  const results: PreflightResult[] = [];
  for (const rule of preflightRules(dataSource)) {
    const tables = rule.kind === 'foreign-key' ? [rule.table, rule.referencedTable] : [rule.table];
    if (!tables.every((table) => existing.has(table))) continue;
    const rows = await query<{ count: string; id: string | number }>(
      `SELECT count(*) OVER () AS count, t."id" AS id FROM ${quoteIdentifier(rule.table)} t
        WHERE ${breakingCondition(rule)} ORDER BY t."id" LIMIT ${SAMPLE_SIZE}`,
    );
    results.push({
      rule,
      count: rows.length === 0 ? 0 : Number(rows[0].count),
      sampleIds: rows.map((row) => row.id),
    });
  }
  return { results, broken: results.filter((result) => result.count > 0) };
}

/** What --fix does about a rule, or undefined when it needs a person. */
export function plannedRepair(rule: PreflightRule): string | undefined {
  if (rule.kind === 'foreign-key') {
    if (rule.onDelete === 'CASCADE') return 'delete them (and what CASCADE would delete with them)';
    if (rule.onDelete === 'SET NULL') return `set ${rule.column} to null`;
    return undefined;
  }
  if (rule.kind === 'check') return rule.repair?.describe;
  return undefined;
}

/** The rules --fix repairs by an update, with the column each changes and its new value. */
export function updateRepair(
  rule: PreflightRule,
): { column: string; value: string; describe: string } | undefined {
  if (rule.kind === 'foreign-key' && rule.onDelete === 'SET NULL') {
    return { column: rule.column, value: 'NULL', describe: `set ${rule.column} to null` };
  }
  if (rule.kind === 'check' && rule.repair) {
    const { column, set, describe } = rule.repair;
    return { column, value: set, describe };
  }
  return undefined;
}
