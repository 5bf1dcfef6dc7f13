import type { Command } from 'commander';
import { migrationStatus } from '../../inspect/migration-states';
import { existingTables } from '../../upgrade/legacy-schema';
import { detectOrigin } from '../../upgrade/origin';
import { describeOrigin } from '../reports/adoption';
import { ExitCode, outcome, say } from '../output';
import { action, withSession } from '../session';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'list applied and pending migrations (alembic current, history and heads in one report)',
    )
    .option('--check', 'exit 1 while any migration is pending (for CI and release scripts)')
    .action(
      action(async (options: { check?: boolean }) =>
        withSession(async ({ dataSource }) => {
          const status = await migrationStatus(dataSource);
          say('\nMigrations (oldest first):');
          for (const state of status.migrations) {
            const mark = state.applied ? '[x]' : '[ ]';
            const note = state.unknown
              ? "  (applied, but not in this code: your app's migration? a newer release?)"
              : '';
            say(`  ${mark} ${state.name}${note}`);
          }
          // No migration recorded: an empty database, or one made before this tool (to adopt).
          const origin = await detectOrigin(dataSource);
          const unadoptedTables =
            status.current === null
              ? await existingTables((sql, params) => dataSource.query(sql, params))
              : [];
          const none =
            unadoptedTables.length > 0
              ? `(none: PixCrawler tables exist (${unadoptedTables.join(', ')}) but no migration is recorded)`
              : '(none: empty database)';
          say(`\nFound:   ${describeOrigin(origin)}`);
          say(`Current: ${status.current ?? none}`);
          say(`Head:    ${status.head ?? '(none)'}`);
          say(
            unadoptedTables.length > 0
              ? 'Adopt it. Check its rows ' +
                  'with `pixcrawler-db preflight`, see what the upgrade does with ' +
                  '`pixcrawler-db plan --baseline`, then run `pixcrawler-db migrate --baseline`.'
              : status.upToDate
                ? 'Up to date: nothing pending.'
                : `${status.pending.length} pending: run \`pixcrawler-db migrate\`.`,
          );
          const failed = options.check && !status.upToDate;
          return outcome(failed ? ExitCode.differences : ExitCode.ok, {
            ...status,
            origin,
            unadoptedTables,
          });
        }),
      ),
    );
}
