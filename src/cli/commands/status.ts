import type { Command } from 'commander';
import { migrationStates } from '../../migrator/migrator';
import { action, withSession } from '../session';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'list applied and pending migrations (alembic current, history and heads in one report)',
    )
    .action(
      action(async () =>
        withSession(async ({ dataSource }) => {
          const states = await migrationStates(dataSource);
          const applied = states.filter((s) => s.applied);
          const pending = states.filter((s) => !s.applied);
          console.log('\nMigrations (oldest first):');
          for (const state of states) {
            const mark = state.applied ? '[x]' : '[ ]';
            const note = state.unknown ? '  (applied, but not in this code: a newer release?)' : '';
            console.log(`  ${mark} ${state.name}${note}`);
          }
          console.log(`\nCurrent: ${applied.at(-1)?.name ?? '(none: empty database)'}`);
          console.log(`Head:    ${states.filter((s) => !s.unknown).at(-1)?.name ?? '(none)'}`);
          console.log(
            pending.length === 0
              ? 'Up to date: nothing pending.'
              : `${pending.length} pending: run \`pixcrawler-db migrate\`.`,
          );
        }),
      ),
    );
}
