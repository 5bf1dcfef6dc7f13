import type { Command } from 'commander';
import { assertPrimary } from '../../connection/server-role';
import { fixPreflightViolations, formatPreflightReport, runPreflight } from '../../db/preflight';
import { action, withSession } from '../session';
import { refuseOnStandby } from '../standby-refusal';

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
    .action(
      action(async (options: { fix?: boolean; backupDir: string }) =>
        withSession(async ({ dataSource, target }) => {
          // --fix refuses a standby before it reports anything, whether or not rows are broken.
          if (options.fix) {
            await assertPrimary(dataSource, 'repairing preflight violations').catch(
              refuseOnStandby('preflight --fix', target.url),
            );
          }
          const report = await runPreflight(dataSource);
          if (report.results.length === 0) {
            console.log('\nNone of the five existing tables is here: nothing to check.');
            return 0;
          }
          console.log(`\nPreflight (${report.results.length} rules on the existing tables):`);
          console.log(formatPreflightReport(report));
          if (report.broken.length === 0) {
            console.log('\nNo row breaks the new constraints: `pixcrawler-db migrate` may start.');
            return 0;
          }
          if (!options.fix) {
            console.log(
              '\nRows above would make the upgrade fail. Repair them by hand, or run ' +
                '`pixcrawler-db preflight --fix` (it backs them up first).',
            );
            return 1;
          }
          const fixed = await fixPreflightViolations(dataSource, target.url, {
            backupDir: options.backupDir,
          }).catch(refuseOnStandby('preflight --fix', target.url));
          console.log(`\nBackup of every row deleted or changed: ${fixed.backupFile}`);
          for (const [table, count] of Object.entries(fixed.deleted)) {
            console.log(`  deleted ${count} row(s) from ${table}`);
          }
          for (const [rule, count] of Object.entries(fixed.updated)) {
            console.log(`  repaired ${count} row(s) breaking ${rule}`);
          }
          const after = await runPreflight(dataSource);
          if (after.broken.length > 0) {
            console.log('\nStill broken (no automatic repair; fix these by hand):');
            console.log(formatPreflightReport({ results: after.broken, broken: after.broken }));
            return 1;
          }
          console.log('\nPreflight is clean now: `pixcrawler-db migrate` may start.');
          return 0;
        }),
      ),
    );
}
