import type { Command } from 'commander';
import { revertLastMigration } from '../../migrator/migrator';
import { ExitCode, outcome, say } from '../output';
import { action, interruptSignal, withSession } from '../session';
import { migratorEvents } from './migrate';

export function registerRevert(program: Command): void {
  program
    .command('revert')
    .description('undo the last applied migration (alembic downgrade -1)')
    .action(
      action(async () =>
        withSession(async ({ dataSource }) => {
          const reverted = await revertLastMigration(dataSource, migratorEvents(), {
            signal: interruptSignal(),
          });
          say(reverted ? `Reverted ${reverted}.` : 'Nothing to revert: no migration is applied.');
          return outcome(ExitCode.ok, { reverted: reverted ?? null });
        }),
      ),
    );
}
