import type { Command } from 'commander';
import { runPendingMigrations } from '../../db/migrator';
import { action, withSession } from '../session';
import { verifyAndReport } from './verify';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply every pending migration, one migrator at a time (alembic upgrade head)')
    .option(
      '--verify',
      'then verify the schema as `verify` does, in the same process; exits 1 if it finds errors',
    )
    .action(
      action(async (flags: { verify?: boolean }) =>
        withSession(async ({ dataSource, target }) => {
          const applied = await runPendingMigrations(dataSource, target.url, {
            waiting: () =>
              console.log('Another migrator holds the lock; waiting for it to finish…'),
            pending: (names) =>
              console.log(
                names.length === 0
                  ? 'Nothing to migrate: the database is up to date.'
                  : `Applying ${names.length} migration(s):`,
              ),
            finished: (name, ms) => console.log(`  ✓ ${name} (${seconds(ms)})`),
          });
          if (applied.length > 0) console.log(`Applied ${applied.length} migration(s).`);
          return flags.verify ? verifyAndReport(dataSource) : 0;
        }),
      ),
    );
}
