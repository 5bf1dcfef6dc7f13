import type { Command } from 'commander';
import { planMigrations } from '../../migrator/plan';
import { formatPlan } from '../reports/plan';
import { action, withSession } from '../session';
import { adoptionOptions, type AdoptionFlags } from './migrate';

export function registerPlan(program: Command): void {
  adoptionOptions(
    program
      .command('plan')
      .summary('show what `migrate` would do, statement by statement, and change nothing')
      .description(
        'show what `migrate` with the same flags would do, in order: every statement, the lock ' +
          'it takes on each table (with the table’s row estimate and size), whether it scans or ' +
          'rewrites the table; with --baseline, how the existing tables differ from the legacy ' +
          'schema and what happens to each difference. Changes nothing. Exit 0 when migrate ' +
          'would run (or has nothing to do), 1 when it would refuse, 2 on a usage error, 3 when ' +
          'the database cannot be reached',
      ),
  )
    .option('--json', 'print the plan as JSON on stdout (the same data)')
    .action(
      action(async (flags: AdoptionFlags & { json?: boolean }) =>
        withSession(async ({ dataSource }) => {
          const plan = await planMigrations(dataSource, {
            baseline: flags.baseline,
            legacyTimezone: flags.legacyTimezone,
            allowRewrite: flags.allowRewrite,
          });
          if (flags.json) {
            process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
          } else {
            const command = [
              'migrate',
              flags.baseline ? '--baseline' : '',
              flags.legacyTimezone ? `--legacy-timezone ${flags.legacyTimezone}` : '',
              flags.allowRewrite ? '--allow-rewrite' : '',
            ]
              .filter(Boolean)
              .join(' ');
            console.log(`\n${formatPlan(plan, command)}`);
          }
          return plan.refusal ? 1 : 0;
        }, flags),
      ),
    );
}
