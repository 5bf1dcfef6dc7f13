import type { Command } from 'commander';
import { assertPrimary } from '../../connection/server-role';
import {
  fixPreflightViolations,
  restorePreflightBackup,
  runPreflight,
} from '../../upgrade/preflight';
import { formatPreflightReport, formatRestoreResult } from '../reports/preflight';
import { ExitCode, outcome, say } from '../output';
import { action, interruptSignal, OperatorError, withSession } from '../session';

/**
 * The key backups are signed (HMAC-SHA256) and checked with: the operator keeps it, and it is
 * never printed. Read when the command runs.
 */
const BACKUP_KEY = 'PIXCRAWLER_BACKUP_KEY';
const backupKey = () => process.env[BACKUP_KEY] || undefined;

interface PreflightOptions {
  fix?: boolean;
  backupDir: string;
  restore?: string;
  forceOverwriteChanged?: boolean;
}

export function registerPreflight(program: Command): void {
  program
    .command('preflight')
    .description(
      'count existing rows that break the foreign keys, checks and unique index the upgrade adds ' +
        '(exit code 1 when any does)',
    )
    .option(
      '--fix',
      'repair them: back up every affected row to a JSON Lines file, then in one transaction ' +
        'delete orphans (as CASCADE would), null orphaned user_id (as SET NULL would), clamp ' +
        "out-of-range numbers and set unknown values to a safe one (role 'user', project " +
        "'archived', crawl job 'failed')",
    )
    .option('--backup-dir <dir>', 'where --fix writes its backup file', 'pixcrawler-backups')
    .option(
      '--restore <file>',
      'put the rows of a --fix backup file back (deleted rows inserted, changed rows reset), ' +
        'in one transaction, after checking every line against this database; with ' +
        `${BACKUP_KEY} set, backups are signed by --fix and checked by --restore`,
    )
    .option(
      '--force-overwrite-changed',
      'with --restore: reset a changed row even when the column --fix changed holds another ' +
        'value now (each such row is named)',
    )
    .action(
      action(async (options: PreflightOptions) =>
        withSession(async ({ dataSource }) => {
          // --fix and --restore refuse a standby before reporting anything, broken rows or not.
          if (options.fix || options.restore !== undefined) {
            await assertPrimary(
              dataSource,
              options.fix ? 'preflight --fix' : 'preflight --restore',
            );
          }
          if (options.forceOverwriteChanged && options.restore === undefined) {
            throw new OperatorError(
              '--force-overwrite-changed goes with --restore FILE.',
              ExitCode.usage,
            );
          }
          if (options.restore !== undefined) {
            if (options.fix) {
              throw new OperatorError('Give --fix or --restore, not both.', ExitCode.usage);
            }
            const restored = await restorePreflightBackup(dataSource, options.restore, {
              key: backupKey(),
              overwriteChanged: options.forceOverwriteChanged,
            });
            say(formatRestoreResult(restored));
            return outcome(ExitCode.ok, { restored });
          }
          const report = await runPreflight(dataSource);
          if (report.results.length === 0) {
            say('\nNone of the PixCrawler tables is here: nothing to check.');
            return outcome(ExitCode.ok, { report });
          }
          say(`\nPreflight (${report.results.length} rules on the existing tables):`);
          say(formatPreflightReport(report));
          if (report.broken.length === 0) {
            say('\nNo row breaks the new constraints: `pixcrawler-db migrate` may start.');
            return outcome(ExitCode.ok, { report });
          }
          if (!options.fix) {
            say(
              '\nRows above would make the upgrade fail. Repair them by hand, or run ' +
                '`pixcrawler-db preflight --fix` (it backs them up first).',
            );
            return outcome(ExitCode.differences, { report });
          }
          const fixed = await fixPreflightViolations(dataSource, {
            backupDir: options.backupDir,
            key: backupKey(),
            signal: interruptSignal(),
          });
          say(`\nBackup of every row deleted or changed: ${fixed.backupFile}`);
          say(
            fixed.signed
              ? `  (signed with the key in ${BACKUP_KEY}: --restore needs the same key)`
              : `  (not signed: set ${BACKUP_KEY} to sign backups)`,
          );
          say(`  (undo with: pixcrawler-db preflight --restore ${fixed.backupFile})`);
          for (const [table, count] of Object.entries(fixed.deleted)) {
            say(`  deleted ${count} row(s) from ${table}`);
          }
          for (const [rule, count] of Object.entries(fixed.updated)) {
            say(`  repaired ${count} row(s) breaking ${rule}`);
          }
          const after = await runPreflight(dataSource);
          if (after.broken.length > 0) {
            say('\nStill broken (no automatic repair; fix these by hand):');
            say(formatPreflightReport({ results: after.broken, broken: after.broken }));
            return outcome(ExitCode.differences, { report, fixed, after });
          }
          say('\nPreflight is clean now: `pixcrawler-db migrate` may start.');
          return outcome(ExitCode.ok, { report, fixed, after });
        }),
      ),
    );
}
