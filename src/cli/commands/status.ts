import type { Command } from 'commander';
import { migrationStates } from '../../migrator/migrator';
import { existingLegacyTables } from '../../upgrade/legacy-schema';
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
          // No migration recorded: an empty database, or one made before this tool (to adopt).
          const unadopted =
            applied.length === 0
              ? await existingLegacyTables((sql, params) => dataSource.query(sql, params))
              : [];
          const none =
            unadopted.length > 0
              ? `(none: PixCrawler tables exist (${unadopted.join(', ')}) but no migration is recorded)`
              : '(none: empty database)';
          console.log(`\nCurrent: ${applied.at(-1)?.name ?? none}`);
          console.log(`Head:    ${states.filter((s) => !s.unknown).at(-1)?.name ?? '(none)'}`);
          console.log(
            unadopted.length > 0
              ? 'This database was created before this tool managed it: adopt it. Check its rows ' +
                  'with `pixcrawler-db preflight`, see what the upgrade does with ' +
                  '`pixcrawler-db plan --baseline`, then run `pixcrawler-db migrate --baseline`.'
              : pending.length === 0
                ? 'Up to date: nothing pending.'
                : `${pending.length} pending: run \`pixcrawler-db migrate\`.`,
          );
        }),
      ),
    );
}
