import type { Command } from 'commander';
import { MigrationRefusedError, runPendingMigrations } from '../../migrator/migrator';
import { ADOPTION_REFUSAL_ADVICE, formatAdoptionReport } from '../reports/adoption';
import { action, OperatorError, withSession } from '../session';
import { verifyAndReport } from './verify';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export const printRetry = (attempt: number, max: number, delayMs: number, error: Error) =>
  console.log(
    `  A statement gave up waiting for a lock (${error.message}); ` +
      `retrying in ${seconds(delayMs)} (attempt ${attempt + 1} of ${max})…`,
  );

/** A refused run as the operator reads it: the message, and the classification behind it. */
export function refusalMessage(error: MigrationRefusedError): string {
  const adoption = error.details.adoption;
  if (error.reason === 'not-adoptable' && adoption) {
    return `${error.message}\n${formatAdoptionReport(adoption)}\n${ADOPTION_REFUSAL_ADVICE}`;
  }
  return error.message;
}

export interface AdoptionFlags {
  baseline?: boolean;
  legacyTimezone?: string;
  allowRewrite?: boolean;
}

/** The adoption flags `migrate` and `plan` share. */
export function adoptionOptions(command: Command): Command {
  return command
    .option(
      '--baseline',
      'adopt a database that already holds the five legacy tables: classify how they differ, ' +
        'convert what converts in place, record the first migration as applied, then run the rest',
    )
    .option(
      '--legacy-timezone <zone>',
      'with --baseline: the zone `timestamp without time zone` values were written in (default ' +
        'UTC, a catalog-only change; any other zone rewrites the tables)',
    )
    .option(
      '--allow-rewrite',
      'with --baseline and a --legacy-timezone other than UTC: accept rewriting the tables',
    );
}

export function registerMigrate(program: Command): void {
  adoptionOptions(
    program
      .command('migrate')
      .description('apply every pending migration, one migrator at a time (alembic upgrade head)'),
  )
    .option(
      '--verify',
      'then verify the schema as `verify` does, in the same process; exits 1 if it finds errors',
    )
    .action(
      action(async (options: AdoptionFlags & { verify?: boolean }) =>
        withSession(async ({ dataSource, target }) => {
          const applied = await runPendingMigrations(
            dataSource,
            target.url,
            {
              waiting: () =>
                console.log('Another migrator holds the lock; waiting for it to finish…'),
              adopting: (report) => console.log(formatAdoptionReport(report)),
              repaired: ({ name, missing }) =>
                console.log(
                  `Repaired ${name}: it is recorded as applied but ${missing.map((o) => o.name).join(', ')} ` +
                    'were missing (an interrupted revert?); ran it again to make them.',
                ),
              incomplete: ({ name, missing }) =>
                console.log(
                  `WARNING: ${name} is recorded as applied but ${missing.map((o) => o.name).join(', ')} ` +
                    'are missing (an interrupted revert?). Run `pixcrawler-db revert` until it is ' +
                    'reverted (each step of a revert can run again), then `pixcrawler-db migrate`.',
                ),
              converted: (conversions) =>
                console.log(
                  `Converted the timestamps of ${conversions.map((c) => c.table).join(', ')} ` +
                    `to timestamptz (read as ${conversions[0].timezone}).`,
                ),
              baselined: (name) => console.log(`Recorded ${name} as applied (not run).`),
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
            {
              baseline: options.baseline,
              legacyTimezone: options.legacyTimezone,
              allowRewrite: options.allowRewrite,
            },
          ).catch((error: unknown) => {
            if (error instanceof MigrationRefusedError) {
              throw new OperatorError(refusalMessage(error));
            }
            throw error;
          });
          if (applied.length > 0) console.log(`Applied ${applied.length} migration(s).`);
          return options.verify ? verifyAndReport(dataSource) : 0;
        }),
      ),
    );
}
