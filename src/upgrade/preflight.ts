import { once } from 'node:events';
import { open, unlink } from 'node:fs/promises';
import type { PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import { assertPrimary } from '../connection/server-role';
import { existingTables } from './legacy-schema';
import {
  appendJsonLines,
  BackupWriter,
  createBackupFile,
  databaseIdentity,
  PREFLIGHT_BACKUP_FORMAT,
  type PreflightBackupHeader,
} from './preflight-backup';
import {
  breakingCondition,
  preflightRules,
  runPreflight,
  updateRepair,
  type PreflightResult,
  type PreflightRule,
  type Query,
} from './preflight-rules';
import { quoteIdentifier, quoteLiteral } from '../sql/quote';

/**
 * Preflight: before the change adds its foreign keys, checks and unique index to the tables that
 * exist already, count the rows that would break each one (preflight-rules.ts), and repair what
 * has a safe, mechanical repair after writing every row it deletes or changes to a backup
 * (preflight-backup.ts, which also restores one).
 */

export {
  plannedRepair,
  preflightRules,
  runPreflight,
  SAFE_VALUES,
  type PreflightReport,
  type PreflightResult,
  type PreflightRule,
} from './preflight-rules';
export {
  PREFLIGHT_BACKUP_FORMAT,
  PreflightBackupError,
  restorePreflightBackup,
  type DatabaseIdentity,
  type OverwrittenRow,
  type PreflightBackupEnd,
  type PreflightBackupHeader,
  type PreflightBackupProblem,
  type RestoreOptions,
  type RestoreResult,
} from './preflight-backup';

export interface FixResult {
  backupFile: string;
  /** Whether the backup carries an HMAC-SHA256 of the key given in `key`. */
  signed: boolean;
  /** Rows deleted, per table. */
  deleted: Record<string, number>;
  /** Rows changed, per rule name. */
  updated: Record<string, number>;
  /** Broken rules --fix leaves to a person (duplicates, rules without a safe repair). */
  manual: PreflightResult[];
}

/** A rule --fix repairs by changing one column: to `value`, an SQL expression over the row. */
type RepairTarget = {
  rule: PreflightRule;
  table: string;
  column: string;
  value: string;
  describe: string;
};

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
 * changes; `restorePreflightBackup` puts it back. Its first line names the database, each
 * update line holds the value the fix writes (`after`) beside the row as it was, and its last
 * line the file's SHA-256 and, with `key`, its HMAC-SHA256. When anything fails before COMMIT,
 * the transaction rolls back and the backup file is removed: nothing half-done stays behind.
 */
export async function fixPreflightViolations(
  dataSource: DataSource,
  {
    backupDir,
    key,
    signal,
  }: {
    backupDir: string;
    key?: string;
    /**
     * Aborting it (SIGTERM, Ctrl-C) before the fix commits cancels the statement running (one
     * waiting for a row lock, say), rolls everything back, removes the backup and throws the
     * signal's reason: nothing is changed.
     */
    signal?: AbortSignal;
  },
): Promise<FixResult> {
  signal?.throwIfAborted();
  await assertPrimary(dataSource, 'repairing preflight violations');
  const query: Query = (sql, params) => dataSource.query(sql, params);
  const rules = preflightRules(dataSource);
  const report = await runPreflight(dataSource);
  const present = await existingTables(query);
  const header: PreflightBackupHeader = {
    pixcrawlerBackup: PREFLIGHT_BACKUP_FORMAT,
    database: await databaseIdentity(query),
    createdAt: new Date().toISOString(),
    signature: key === undefined ? 'none' : 'hmac-sha256',
  };
  const { file: backupFile, out } = await createBackupFile(backupDir);
  const backup = new BackupWriter(out, key);

  const runner = dataSource.createQueryRunner();
  let commitSent = false;
  let cancelOnAbort: (() => void) | undefined;
  try {
    const client = (await runner.connect()) as PoolClient;
    const [{ pid }] = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
    // A statement waiting for a lock hears no signal: it is cancelled from another connection.
    cancelOnAbort = () => {
      if (!commitSent) void dataSource.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => 0);
    };
    signal?.addEventListener('abort', cancelOnAbort, { once: true });
    signal?.throwIfAborted();
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
      const repair = updateRepair(rule);
      if (repair) targets.push({ rule, table: rule.table, ...repair });
      else manual.push(result);
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
    await backup.write(`${JSON.stringify(header)}\n`);
    for (const table of [...doomed].reverse()) {
      await appendJsonLines(
        client,
        backup,
        `SELECT json_build_object('action', 'delete', 'table', '${table}', 'reason', d.reason,
                                  'row', to_jsonb(t))
           FROM ${quoteIdentifier(table)} t JOIN ${quoteIdentifier(`doomed_${table}`)} d ON d.id = t.id ORDER BY t.id`,
      );
    }
    for (const [index, target] of targets.entries()) {
      // `after`: the value the UPDATE below writes, from the same expression on the same row.
      await appendJsonLines(
        client,
        backup,
        `SELECT json_build_object('action', 'update', 'table', ${quoteLiteral(target.table)},
                                  'reason', ${quoteLiteral(target.rule.name)},
                                  'set', ${quoteLiteral(target.describe)},
                                  'row', to_jsonb(t),
                                  'after', jsonb_build_object(${quoteLiteral(target.column)}, ${target.value}))
           FROM ${quoteIdentifier(target.table)} t JOIN ${keysOf(index)} k ON k.id = t.id ORDER BY t.id`,
      );
    }
    await backup.end();
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
        `UPDATE ${quoteIdentifier(target.table)} t SET ${quoteIdentifier(target.column)} = ${target.value}
          WHERE t.id IN (SELECT id FROM ${keysOf(index)}) AND ${breakingCondition(target.rule)}`,
      );
      updated[target.rule.name] = (updated[target.rule.name] ?? 0) + (rowCount ?? 0);
    }
    signal?.throwIfAborted();
    commitSent = true;
    await client.query('COMMIT');
    return { backupFile, signed: key !== undefined, deleted, updated, manual };
  } catch (caught) {
    // Cancelled because of the signal: the signal's reason is the error, not the cancellation.
    const error: unknown = signal?.aborted && !commitSent ? signal.reason : caught;
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
    if (cancelOnAbort) signal?.removeEventListener('abort', cancelOnAbort);
    await runner.release();
  }
}
