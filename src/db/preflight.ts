import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { DataSource } from 'typeorm';
import { assertPrimary } from '../connection/server-role';
import { existingLegacyTables, LEGACY_TABLE_NAMES } from './legacy-schema';

/**
 * Preflight: before the change adds its foreign keys, checks and unique index to the five
 * existing tables, count the rows that would break each one. The rules come from the entity
 * metadata (restricted to the existing tables), so this list cannot drift from the model.
 *
 * `fixPreflightViolations` repairs what has a safe, mechanical repair, after writing every row
 * it deletes or changes to a JSON Lines backup.
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
  | { kind: 'check'; name: string; table: string; expression: string }
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
 * The value an unknown status or role becomes under `--fix`. Each is the choice that grants
 * nothing and starts nothing, and that a person can change back by hand from the backup:
 * - profiles.role → 'user': an unknown role must never turn into more privilege;
 * - projects.status → 'archived': the project and its data stay, but it no longer counts as
 *   active (nothing is deleted, as 'deleted' would suggest);
 * - crawl_jobs.status → 'failed': no worker is running a job in an unknown state; 'failed' is
 *   terminal, so nothing picks it up as pending, and it can be retried.
 */
export const SAFE_VALUES: Readonly<Record<string, string>> = {
  'profiles.role': 'user',
  'projects.status': 'archived',
  'crawl_jobs.status': 'failed',
};

const q = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/** Every FK, check and unique index the entities declare on the five existing tables. */
export function preflightRules(dataSource: DataSource): PreflightRule[] {
  const rules: PreflightRule[] = [];
  const legacy = dataSource.entityMetadatas
    .filter((metadata) => LEGACY_TABLE_NAMES.includes(metadata.tableName))
    .sort(
      (a, b) => LEGACY_TABLE_NAMES.indexOf(a.tableName) - LEGACY_TABLE_NAMES.indexOf(b.tableName),
    );
  for (const metadata of legacy) {
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
      rules.push({ kind: 'check', name: check.name, table, expression: check.expression });
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
function breakingCondition(rule: PreflightRule): string {
  switch (rule.kind) {
    case 'foreign-key':
      return `t.${q(rule.column)} IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ${q(rule.referencedTable)} p
         WHERE p.${q(rule.referencedColumn)} = t.${q(rule.column)})`;
    case 'check':
      // A CHECK fails only when its expression is FALSE; NULL passes, and so it does here.
      return `NOT (${rule.expression})`;
    case 'unique': {
      const columns = rule.columns.map((c) => q(c)).join(', ');
      return `(${rule.columns.map((c) => `t.${q(c)}`).join(', ')}) IN (
        SELECT ${columns} FROM ${q(rule.table)} GROUP BY ${columns} HAVING count(*) > 1)`;
    }
  }
}

type Query = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/**
 * Counts the rows breaking each rule. Rules on a table that does not exist (a new database, or
 * one the upgrade has not reached) are left out: there is nothing to break them.
 */
export async function runPreflight(dataSource: DataSource): Promise<PreflightReport> {
  const query: Query = (sql, params) => dataSource.query(sql, params);
  const existing = new Set(await existingLegacyTables(query));
  const results: PreflightResult[] = [];
  for (const rule of preflightRules(dataSource)) {
    const tables = rule.kind === 'foreign-key' ? [rule.table, rule.referencedTable] : [rule.table];
    if (!tables.every((table) => existing.has(table))) continue;
    const rows = await query<{ count: string; id: string | number }>(
      `SELECT count(*) OVER () AS count, t."id" AS id FROM ${q(rule.table)} t
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

function describeRule(rule: PreflightRule): string {
  switch (rule.kind) {
    case 'foreign-key':
      return `${rule.table}.${rule.column} without a ${rule.referencedTable} row (ON DELETE ${rule.onDelete})`;
    case 'check':
      return `${rule.table}: ${rule.expression} is false`;
    case 'unique':
      return `${rule.table}: duplicate (${rule.columns.join(', ')})`;
  }
}

/** What --fix does about a rule, or undefined when it needs a person. */
export function plannedRepair(rule: PreflightRule): string | undefined {
  if (rule.kind === 'foreign-key') {
    if (rule.onDelete === 'CASCADE') return 'delete them (and what CASCADE would delete with them)';
    if (rule.onDelete === 'SET NULL') return `set ${rule.column} to null`;
    return undefined;
  }
  if (rule.kind === 'check') {
    const repair = checkRepair(rule);
    return repair?.describe;
  }
  return undefined;
}

export function formatPreflightReport(report: PreflightReport): string {
  const lines: string[] = [];
  for (const { rule, count, sampleIds } of report.results) {
    const mark = count === 0 ? 'ok  ' : 'FAIL';
    lines.push(`  ${mark} ${rule.name}: ${describeRule(rule)}`);
    if (count > 0) {
      const more = count > sampleIds.length ? ', …' : '';
      lines.push(`         ${count} row(s), ids ${sampleIds.join(', ')}${more}`);
      lines.push(`         --fix: ${plannedRepair(rule) ?? 'no automatic repair; fix by hand'}`);
    }
  }
  return lines.join('\n');
}

/** How a check is repaired: the SET expression, from the shape of the check's SQL. */
function checkRepair(
  rule: Extract<PreflightRule, { kind: 'check' }>,
): { column: string; set: string; describe: string } | undefined {
  const between = /^"(\w+)" BETWEEN (-?\d+) AND (-?\d+)$/.exec(rule.expression);
  if (between) {
    const [, column, low, high] = between;
    return {
      column,
      set: `LEAST(GREATEST(${q(column)}, ${low}), ${high})`,
      describe: `clamp ${column} to ${low}..${high}`,
    };
  }
  const atLeast = /^"(\w+)" >= (-?\d+)$/.exec(rule.expression);
  if (atLeast) {
    const [, column, low] = atLeast;
    return { column, set: `GREATEST(${q(column)}, ${low})`, describe: `raise ${column} to ${low}` };
  }
  const oneOf = /^"(\w+)" IN \((.*)\)$/.exec(rule.expression);
  if (oneOf) {
    const [, column, list] = oneOf;
    const safe = SAFE_VALUES[`${rule.table}.${column}`];
    if (safe === undefined || !list.split(', ').includes(`'${safe}'`)) return undefined;
    return { column, set: `'${safe}'`, describe: `set ${column} to '${safe}'` };
  }
  return undefined;
}

export interface FixResult {
  backupFile: string;
  /** Rows deleted, per table. */
  deleted: Record<string, number>;
  /** Rows changed, per rule name. */
  updated: Record<string, number>;
  /** Broken rules --fix leaves to a person (duplicates, rules without a safe repair). */
  manual: PreflightResult[];
}

/** Writes a COPY TO STDOUT of one JSON value per row to the open backup stream. */
async function appendJsonLines(client: Client, out: WriteStream, select: string): Promise<void> {
  // CSV with a quote and a delimiter that JSON text never contains: each value comes out raw.
  const stream = client.query(
    copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`),
  );
  // Written chunk by chunk, not piped: the backup stream stays open for the next table.
  for await (const chunk of stream) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

/**
 * Repairs the rows preflight reports, in one transaction:
 * - orphans of a CASCADE foreign key are deleted, with every row CASCADE would have deleted
 *   with them (an orphaned crawl job takes its images along), children first;
 * - orphans of a SET NULL foreign key get null (an activity log of a vanished profile);
 * - out-of-range numbers are clamped, unknown statuses and roles get their SAFE_VALUES.
 * Every row to be deleted or changed is first locked and written, as it is, to a JSON Lines
 * file in `backupDir`; the changes are made only once that file is complete and flushed. When
 * anything fails, the transaction rolls back and nothing changes.
 */
export async function fixPreflightViolations(
  dataSource: DataSource,
  url: string,
  { backupDir }: { backupDir: string },
): Promise<FixResult> {
  await assertPrimary(dataSource, 'repairing preflight violations');
  const rules = preflightRules(dataSource);
  const report = await runPreflight(dataSource);
  mkdirSync(backupDir, { recursive: true });
  const backupFile = path.resolve(
    backupDir,
    `pixcrawler-preflight-fix-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`,
  );

  const client = new Client({ connectionString: url, application_name: 'pixcrawler-db fix' });
  await client.connect();
  const out = createWriteStream(backupFile, { flags: 'wx' });
  try {
    await client.query('BEGIN');
    // Parents first: a table's doomed rows include the children of its parent's doomed rows.
    const doomed: string[] = [];
    for (const table of LEGACY_TABLE_NAMES) {
      const cascades = rules.filter(
        (r): r is Extract<PreflightRule, { kind: 'foreign-key' }> =>
          r.kind === 'foreign-key' && r.table === table && r.onDelete === 'CASCADE',
      );
      if (cascades.length === 0) continue;
      const reasons = cascades.flatMap((fk) => {
        const orphan = `WHEN ${breakingCondition(fk)} THEN '${fk.name}: no ${fk.referencedTable} row ' || t.${q(fk.column)}`;
        if (!doomed.includes(fk.referencedTable)) return [orphan];
        return [
          orphan,
          `WHEN t.${q(fk.column)} IN (SELECT id FROM ${q(`doomed_${fk.referencedTable}`)})
           THEN 'cascade: ${fk.referencedTable} row ' || t.${q(fk.column)} || ' is deleted'`,
        ];
      });
      await client.query(
        `CREATE TEMP TABLE ${q(`doomed_${table}`)} ON COMMIT DROP AS
           SELECT id, reason FROM (
             SELECT t.id, CASE ${reasons.join(' ')} END AS reason FROM ${q(table)} t) c
            WHERE reason IS NOT NULL`,
      );
      // Lock them: the backup must hold the rows exactly as they are deleted.
      await client.query(
        `SELECT 1 FROM ${q(table)} WHERE id IN (SELECT id FROM ${q(`doomed_${table}`)}) FOR UPDATE`,
      );
      doomed.push(table);
    }

    const notDoomed = (table: string) =>
      doomed.includes(table) ? `AND t.id NOT IN (SELECT id FROM ${q(`doomed_${table}`)})` : '';
    const updates: Array<{ rule: PreflightRule; table: string; set: string; where: string }> = [];
    const manual: PreflightResult[] = [];
    for (const result of report.broken) {
      const { rule } = result;
      if (rule.kind === 'foreign-key' && rule.onDelete === 'CASCADE') continue;
      if (rule.kind === 'foreign-key' && rule.onDelete === 'SET NULL') {
        updates.push({
          rule,
          table: rule.table,
          set: `${q(rule.column)} = NULL`,
          where: `${breakingCondition(rule)} ${notDoomed(rule.table)}`,
        });
        continue;
      }
      const repair = rule.kind === 'check' ? checkRepair(rule) : undefined;
      if (!repair) {
        manual.push(result);
        continue;
      }
      updates.push({
        rule,
        table: rule.table,
        set: `${q(repair.column)} = ${repair.set}`,
        where: `${breakingCondition(rule)} ${notDoomed(rule.table)}`,
      });
    }
    for (const update of updates) {
      await client.query(`SELECT 1 FROM ${q(update.table)} t WHERE ${update.where} FOR UPDATE`);
    }

    // 1. The backup: every row as it is now, with what is about to happen to it.
    for (const table of [...doomed].reverse()) {
      await appendJsonLines(
        client,
        out,
        `SELECT json_build_object('action', 'delete', 'table', '${table}', 'reason', d.reason,
                                  'row', to_jsonb(t))
           FROM ${q(table)} t JOIN ${q(`doomed_${table}`)} d ON d.id = t.id ORDER BY t.id`,
      );
    }
    for (const update of updates) {
      await appendJsonLines(
        client,
        out,
        `SELECT json_build_object('action', 'update', 'table', '${update.table}',
                                  'reason', '${update.rule.name}', 'set', '${update.set.replaceAll("'", "''")}',
                                  'row', to_jsonb(t))
           FROM ${q(update.table)} t WHERE ${update.where} ORDER BY t.id`,
      );
    }
    out.end();
    await once(out, 'close');
    // On disk before anything changes: a crash after COMMIT must not lose the only copy.
    const written = await open(backupFile, 'r');
    try {
      await written.sync();
    } finally {
      await written.close();
    }

    // 2. The repair, children first.
    const deleted: Record<string, number> = {};
    for (const table of [...doomed].reverse()) {
      const { rowCount } = await client.query(
        `DELETE FROM ${q(table)} WHERE id IN (SELECT id FROM ${q(`doomed_${table}`)})`,
      );
      deleted[table] = rowCount ?? 0;
    }
    const updated: Record<string, number> = {};
    for (const update of updates) {
      const { rowCount } = await client.query(
        `UPDATE ${q(update.table)} t SET ${update.set} WHERE ${update.where}`,
      );
      updated[update.rule.name] = (updated[update.rule.name] ?? 0) + (rowCount ?? 0);
    }
    await client.query('COMMIT');
    return { backupFile, deleted, updated, manual };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    if (!out.closed) out.destroy();
    await client.end();
  }
}
