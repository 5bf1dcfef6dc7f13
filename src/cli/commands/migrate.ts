import type { Command } from 'commander';
import { MigrationRefusedError, runPendingMigrations } from '../../db/migrator';
import { action, OperatorError, withSession } from '../session';
import { refuseOnStandby } from '../standby-refusal';
import { verifyAndReport } from './verify';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export const printRetry = (attempt: number, max: number, delayMs: number, error: Error) =>
  console.log(
    `  A statement gave up waiting for a lock (${error.message}); ` +
      `retrying in ${seconds(delayMs)} (attempt ${attempt + 1} of ${max})…`,
  );

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply every pending migration, one migrator at a time (alembic upgrade head)')
    .option(
      '--baseline',
      'adopt a database that already holds the five legacy tables: check them, record the ' +
        'first migration as applied, then run the rest',
    )
    .option(
      '--verify',
      'then verify the schema as `verify` does, in the same process; exits 1 if it finds errors',
    )
    .action(
      action(async (options: { baseline?: boolean; verify?: boolean }) =>
        withSession(async ({ dataSource, target }) => {
          const applied = await runPendingMigrations(
            dataSource,
            target.url,
            {
              waiting: () =>
                console.log('Another migrator holds the lock; waiting for it to finish…'),
              baselined: (name) =>
                console.log(`Legacy tables match; recorded ${name} as applied (not run).`),
              preflight: (report) =>
                report.broken.length === 0 &&
                console.log('Preflight: no existing row breaks the new constraints.'),
              retrying: printRetry,
              pending: (names) =>
                console.log(
                  names.length === 0
                    ? 'Nothing to migrate: the database is up to date.'
                    : `Applying ${names.length} migration(s):`,
                ),
              finished: (name, ms) => console.log(`  ✓ ${name} (${seconds(ms)})`),
            },
            { baseline: options.baseline },
          )
            .catch(refuseOnStandby('migrate', target.url))
            .catch((error: unknown) => {
              if (error instanceof MigrationRefusedError) throw new OperatorError(error.message);
              throw error;
            });
          if (applied.length > 0) console.log(`Applied ${applied.length} migration(s).`);
          return options.verify ? verifyAndReport(dataSource) : 0;
        }),
      ),
    );
}
