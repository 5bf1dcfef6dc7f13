import type { Command } from 'commander';
import { runPendingMigrations, type MigratorEvents } from '../../migrator/migrator';
import { ExitCode, outcome, say } from '../output';
import { action, withSession } from '../session';
import { verifyAndReport } from './verify';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** What `migrate` and `revert` say while the migrator works. */
export function migratorEvents(): MigratorEvents {
  return {
    waiting: () => say('Another migrator holds the lock; waiting for it to finish…'),
    baselined: (name) => say(`Legacy tables match; recorded ${name} as applied (not run).`),
    preflight: (report) =>
      report.broken.length === 0 && say('Preflight: no existing row breaks the new constraints.'),
    retrying: (attempt, max, delayMs, error) =>
      say(
        `  A statement gave up waiting for a lock (${error.message}); ` +
          `retrying in ${seconds(delayMs)} (attempt ${attempt + 1} of ${max})…`,
      ),
    pending: (names) =>
      say(
        names.length === 0
          ? 'Nothing to migrate: the database is up to date.'
          : `Applying ${names.length} migration(s):`,
      ),
    finished: (name, ms) => say(`  ✓ ${name} (${seconds(ms)})`),
  };
}

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
        withSession(async ({ dataSource }) => {
          let baselined: string | null = null;
          const events = migratorEvents();
          const applied = await runPendingMigrations(
            dataSource,
            {
              ...events,
              baselined: (name) => {
                baselined = name;
                events.baselined?.(name);
              },
            },
            { baseline: options.baseline },
          );
          if (applied.length > 0) say(`Applied ${applied.length} migration(s).`);
          if (!options.verify) return outcome(ExitCode.ok, { applied, baselined });
          const verified = await verifyAndReport(dataSource);
          return outcome(verified.exitCode, { applied, baselined, verify: verified.result });
        }),
      ),
    );
}
