import type { Command } from 'commander';
import { MigrationRefusedError, revertLastMigration } from '../../db/migrator';
import { action, OperatorError, withSession } from '../session';
import { refuseOnStandby } from '../standby-refusal';
import { printRetry } from './migrate';

export function registerRevert(program: Command): void {
  program
    .command('revert')
    .description('undo the last applied migration (alembic downgrade -1)')
    .action(
      action(async () =>
        withSession(async ({ dataSource, target }) => {
          const reverted = await revertLastMigration(dataSource, target.url, {
            waiting: () =>
              console.log('Another migrator holds the lock; waiting for it to finish…'),
            retrying: printRetry,
          })
            .catch(refuseOnStandby('revert', target.url))
            .catch((error: unknown) => {
              if (error instanceof MigrationRefusedError) throw new OperatorError(error.message);
              throw error;
            });
          console.log(
            reverted ? `Reverted ${reverted}.` : 'Nothing to revert: no migration is applied.',
          );
        }),
      ),
    );
}
