import type { Command } from 'commander';
import { planMigrations } from '../../migrator/plan';
import { formatPlan } from '../reports/plan';
import { ExitCode, isJsonMode, outcome, say } from '../output';
import { action, withSession } from '../session';
import { adoptionFlags, adoptionOptions, type AdoptionFlags } from './migrate';

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
  ).action(
    action(async (flags: AdoptionFlags) =>
      withSession(async ({ dataSource }) => {
        const plan = await planMigrations(dataSource, adoptionFlags(flags));
        if (!isJsonMode()) {
          const command = [
            'migrate',
            flags.baseline ? '--baseline' : '',
            flags.legacyTimezone ? `--legacy-timezone ${flags.legacyTimezone}` : '',
            flags.allowRewrite ? '--allow-rewrite' : '',
          ]
            .filter(Boolean)
            .join(' ');
          say(`\n${formatPlan(plan, command)}`);
        }
        return outcome(plan.refusal ? ExitCode.differences : ExitCode.ok, { plan });
      }),
    ),
  );
}
