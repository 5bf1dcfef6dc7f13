import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { DataSource } from 'typeorm';
import { assertPrimary } from '../connection/server-role';
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
 * Preflight: before the change adds its foreign keys, checks and unique index to the tables that
 * exist already (the five legacy ones; all seven on a database PixCrawler's Alembic 001 built),
 * count the rows that would break each one. The rules come from the entity metadata (restricted
 * to the tables that exist), so this list cannot drift from the model.
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
function breakingCondition(rule: PreflightRule): string {
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

type Query = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

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

export interface FixResult {
  backupFile: string;
  /** Rows deleted, per table. */
  deleted: Record<string, number>;
  /** Rows changed, per rule name. */
  updated: Record<string, number>;
  /** Broken rules --fix leaves to a person (duplicates, rules without a safe repair). */
  manual: PreflightResult[];
}

export type PreflightBackupProblem =
  'backup-dir-not-writable' | 'backup-unreadable' | 'invalid-backup' | 'row-exists' | 'row-missing';

/**
 * `--fix` could not write its backup, or `--restore` cannot put a backup back. Nothing was
 * changed in the database when this is thrown.
 */
export class PreflightBackupError extends Error {
  override name = 'PreflightBackupError';
  constructor(
    readonly problem: PreflightBackupProblem,
    /** The backup file or directory. */
    readonly file: string,
    message: string,
    /** For invalid-backup, row-exists, row-missing: the 1-based line of the backup file. */
    readonly line?: number,
    /** The system or database error code behind it (EACCES, 23505, …). */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Writes a COPY TO STDOUT of one JSON value per row to the open backup stream. */
async function appendJsonLines(
  client: PoolClient,
  out: WriteStream,
  select: string,
): Promise<void> {
  // CSV with a quote and a delimiter that JSON text never contains: each value comes out raw.
  const stream = client.query(
    copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`),
  );
  // Written chunk by chunk, not piped: the backup stream stays open for the next table.
  for await (const chunk of stream) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

/** Creates the backup file (never overwriting one), or PreflightBackupError before any change. */
async function createBackupFile(backupDir: string): Promise<{ file: string; out: WriteStream }> {
  const file = path.resolve(
    backupDir,
    `pixcrawler-preflight-fix-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`,
  );
  const refuse = (error: NodeJS.ErrnoException): never => {
    throw new PreflightBackupError(
      'backup-dir-not-writable',
      path.resolve(backupDir),
      `cannot write a backup file in ${path.resolve(backupDir)}: ${error.code ?? error.message}`,
      undefined,
      error.code,
    );
  };
  await mkdir(backupDir, { recursive: true }).catch(refuse);
  const out = createWriteStream(file, { flags: 'wx' });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', reject);
  }).catch(refuse);
  return { file, out };
}

type RepairTarget = { rule: PreflightRule; table: string; set: string; describe: string };

/**
 * Repairs the rows preflight reports, in one transaction:
 * - orphans of a CASCADE foreign key are deleted, with every row CASCADE would have deleted
 *   with them (an orphaned crawl job takes its images along), children first;
 * - orphans of a SET NULL foreign key get null (an activity log of a vanished profile);
 * - rows breaking a check get the repair the check declares (entities/checks.ts): numbers
 *   clamped, unknown statuses and roles set to their safe value.
 *
 * Safe under concurrent writes: first every row to delete or change is selected FOR UPDATE and
 * its key kept; the backup is written from exactly those locked rows; the repair then touches
 * exactly those keys (re-checking the rule), never "whatever breaks the rule now". A row another
 * session breaks meanwhile is neither backed up nor changed: the preflight after the fix
 * reports it. So the backup holds every row the fix changed, always.
 *
 * The backup is a JSON Lines file in `backupDir`, complete and flushed to disk before anything
 * changes; `restorePreflightBackup` puts it back. When anything fails before COMMIT, the
 * transaction rolls back and the backup file is removed: nothing half-done stays behind.
 */
export async function fixPreflightViolations(
  dataSource: DataSource,
  { backupDir }: { backupDir: string },
): Promise<FixResult> {
  await assertPrimary(dataSource, 'repairing preflight violations');
  const rules = preflightRules(dataSource);
  const report = await runPreflight(dataSource);
  const present = await existingTables((sql, params) => dataSource.query(sql, params));
  const { file: backupFile, out } = await createBackupFile(backupDir);

  const runner = dataSource.createQueryRunner();
  let commitSent = false;
  try {
    const client = (await runner.connect()) as PoolClient;
    await client.query('BEGIN');
    // 1. Lock and remember the keys. Parents first: a table's doomed rows include the children
    //    of its parent's doomed rows.
    const doomed: string[] = [];
    for (const table of present) {
      const cascades = rules.filter(
        (r): r is Extract<PreflightRule, { kind: 'foreign-key' }> =>
          r.kind === 'foreign-key' &&
          r.table === table &&
          r.onDelete === 'CASCADE' &&
          present.includes(r.referencedTable),
      );
      if (cascades.length === 0) continue;
      const reasons = cascades.flatMap((fk) => {
        const orphan = {
          when: breakingCondition(fk),
          then: `'${fk.name}: no ${fk.referencedTable} row ' || t.${quoteIdentifier(fk.column)}`,
        };
        if (!doomed.includes(fk.referencedTable)) return [orphan];
        return [
          orphan,
          {
            when: `t.${quoteIdentifier(fk.column)} IN (SELECT id FROM ${quoteIdentifier(`doomed_${fk.referencedTable}`)})`,
            then: `'cascade: ${fk.referencedTable} row ' || t.${quoteIdentifier(fk.column)} || ' is deleted'`,
          },
        ];
      });
      await client.query(
        `CREATE TEMP TABLE ${quoteIdentifier(`doomed_${table}`)} ON COMMIT DROP AS
           WITH locked AS (
             SELECT t.id, CASE ${reasons.map((r) => `WHEN ${r.when} THEN ${r.then}`).join(' ')} END AS reason
               FROM ${quoteIdentifier(table)} t
              WHERE ${reasons.map((r) => `(${r.when})`).join(' OR ')}
                FOR UPDATE OF t)
           SELECT id, reason FROM locked`,
      );
      doomed.push(table);
    }

    const notDoomed = (table: string) =>
      doomed.includes(table)
        ? `AND t.id NOT IN (SELECT id FROM ${quoteIdentifier(`doomed_${table}`)})`
        : '';
    const targets: RepairTarget[] = [];
    const manual: PreflightResult[] = [];
    for (const result of report.broken) {
      const { rule } = result;
      if (rule.kind === 'foreign-key' && rule.onDelete === 'CASCADE') continue;
      if (rule.kind === 'foreign-key' && rule.onDelete === 'SET NULL') {
        targets.push({
          rule,
          table: rule.table,
          set: `${quoteIdentifier(rule.column)} = NULL`,
          describe: `set ${rule.column} to null`,
        });
      } else if (rule.kind === 'check' && rule.repair) {
        targets.push({
          rule,
          table: rule.table,
          set: `${quoteIdentifier(rule.repair.column)} = ${rule.repair.set}`,
          describe: rule.repair.describe,
        });
      } else {
        manual.push(result);
      }
    }
    const keysOf = (index: number) => quoteIdentifier(`fix_${index}`);
    for (const [index, target] of targets.entries()) {
      await client.query(
        `CREATE TEMP TABLE ${keysOf(index)} ON COMMIT DROP AS
           WITH locked AS (
             SELECT t.id FROM ${quoteIdentifier(target.table)} t
              WHERE ${breakingCondition(target.rule)} ${notDoomed(target.table)}
                FOR UPDATE OF t)
           SELECT id FROM locked`,
      );
    }

    // 2. The backup: exactly the locked rows, as they are, with what is about to happen to each.
    for (const table of [...doomed].reverse()) {
      await appendJsonLines(
        client,
        out,
        `SELECT json_build_object('action', 'delete', 'table', '${table}', 'reason', d.reason,
                                  'row', to_jsonb(t))
           FROM ${quoteIdentifier(table)} t JOIN ${quoteIdentifier(`doomed_${table}`)} d ON d.id = t.id ORDER BY t.id`,
      );
    }
    for (const [index, target] of targets.entries()) {
      await appendJsonLines(
        client,
        out,
        `SELECT json_build_object('action', 'update', 'table', '${target.table}',
                                  'reason', '${target.rule.name}',
                                  'set', '${target.describe.replaceAll("'", "''")}',
                                  'row', to_jsonb(t))
           FROM ${quoteIdentifier(target.table)} t JOIN ${keysOf(index)} k ON k.id = t.id ORDER BY t.id`,
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

    // 3. The repair: exactly the backed-up keys, children first; updates re-check their rule.
    const deleted: Record<string, number> = {};
    for (const table of [...doomed].reverse()) {
      const { rowCount } = await client.query(
        `DELETE FROM ${quoteIdentifier(table)} WHERE id IN (SELECT id FROM ${quoteIdentifier(`doomed_${table}`)})`,
      );
      deleted[table] = rowCount ?? 0;
    }
    const updated: Record<string, number> = {};
    for (const [index, target] of targets.entries()) {
      const { rowCount } = await client.query(
        `UPDATE ${quoteIdentifier(target.table)} t SET ${target.set}
          WHERE t.id IN (SELECT id FROM ${keysOf(index)}) AND ${breakingCondition(target.rule)}`,
      );
      updated[target.rule.name] = (updated[target.rule.name] ?? 0) + (rowCount ?? 0);
    }
    commitSent = true;
    await client.query('COMMIT');
    return { backupFile, deleted, updated, manual };
  } catch (error) {
    if (!runner.isReleased) await runner.query('ROLLBACK').catch(() => undefined);
    if (!out.closed) {
      out.destroy();
      await once(out, 'close').catch(() => undefined);
    }
    // A fix that did not happen leaves no backup of it. (When COMMIT was sent, its outcome is
    // unknown: the backup may then be the only copy of the rows, so it stays.)
    if (!commitSent) await unlink(backupFile).catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}

export interface RestoreResult {
  backupFile: string;
  /** Rows inserted back (the fix had deleted them), per table. */
  reinserted: Record<string, number>;
  /** Rows whose backed-up values were written back (the fix had changed them), per table. */
  restored: Record<string, number>;
}

interface BackupLine {
  line: number;
  action: 'delete' | 'update';
  table: string;
  row: Record<string, unknown> & { id: string | number };
}

/** Every line of a --fix backup, checked before anything is written. */
async function readBackup(file: string): Promise<BackupLine[]> {
  const lines: BackupLine[] = [];
  const input = createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened.catch((error: NodeJS.ErrnoException) => {
    throw new PreflightBackupError(
      'backup-unreadable',
      file,
      `cannot read ${file}: ${error.code ?? error.message}`,
      undefined,
      error.code,
    );
  });
  let number = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    number += 1;
    if (text.trim() === '') continue;
    const invalid = (why: string) =>
      new PreflightBackupError('invalid-backup', file, `line ${number}: ${why}`, number);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw invalid('not JSON');
    }
    const entry = parsed as Partial<BackupLine> | null;
    if (entry?.action !== 'delete' && entry?.action !== 'update') {
      throw invalid('action must be "delete" or "update"');
    }
    if (typeof entry.table !== 'string' || !PIXCRAWLER_TABLE_NAMES.includes(entry.table)) {
      throw invalid(`table must be one of ${PIXCRAWLER_TABLE_NAMES.join(', ')}`);
    }
    const row = entry.row;
    if (typeof row !== 'object' || row === null || Array.isArray(row) || row.id == null) {
      throw invalid('row must be an object with an id');
    }
    lines.push({ line: number, action: entry.action, table: entry.table, row });
  }
  return lines;
}

/**
 * Puts the rows of a `--fix` backup back, in one transaction: deleted rows are inserted again
 * (parents first), changed rows get their backed-up values again. Refuses (PreflightBackupError,
 * nothing changed) a file that is not such a backup, a deleted row whose id is taken again, and
 * a changed row that no longer exists.
 */
export async function restorePreflightBackup(
  dataSource: DataSource,
  backupFile: string,
): Promise<RestoreResult> {
  await assertPrimary(dataSource, 'restoring a preflight backup');
  const file = path.resolve(backupFile);
  const lines = await readBackup(file);
  const order = (line: BackupLine) => PIXCRAWLER_TABLE_NAMES.indexOf(line.table);
  const inserts = lines.filter((l) => l.action === 'delete').sort((a, b) => order(a) - order(b));
  const updates = lines.filter((l) => l.action === 'update');
  const result: RestoreResult = { backupFile: file, reinserted: {}, restored: {} };
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    await runner.startTransaction();
    for (const entry of inserts) {
      const table = quoteIdentifier(entry.table);
      await runner
        .query(
          `INSERT INTO ${table} SELECT * FROM jsonb_populate_record(NULL::${table}, $1::jsonb)`,
          [JSON.stringify(entry.row)],
        )
        .catch((error: { driverError?: { code?: string } }) => {
          if (error.driverError?.code !== '23505') throw error;
          throw new PreflightBackupError(
            'row-exists',
            file,
            `line ${entry.line}: ${entry.table} ${entry.row.id} exists again`,
            entry.line,
            '23505',
          );
        });
      result.reinserted[entry.table] = (result.reinserted[entry.table] ?? 0) + 1;
    }
    for (const entry of updates) {
      const table = quoteIdentifier(entry.table);
      const columns = Object.keys(entry.row).filter((column) => column !== 'id');
      const [, count] = (await runner.query(
        `UPDATE ${table} t SET (${columns.map(quoteIdentifier).join(', ')}) = ROW(${columns.map((c) => `r.${quoteIdentifier(c)}`).join(', ')})
           FROM jsonb_populate_record(NULL::${table}, $1::jsonb) r
          WHERE t.id = r.id`,
        [JSON.stringify(entry.row)],
      )) as [unknown, number];
      if (count !== 1) {
        throw new PreflightBackupError(
          'row-missing',
          file,
          `line ${entry.line}: ${entry.table} ${entry.row.id} no longer exists`,
          entry.line,
        );
      }
      result.restored[entry.table] = (result.restored[entry.table] ?? 0) + 1;
    }
    await runner.commitTransaction();
    return result;
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
