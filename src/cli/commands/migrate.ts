import { InvalidArgumentError, type Command } from 'commander';
import { runPendingMigrations, type MigratorEvents } from '../../migrator/migrator';
import { ExitCode, outcome, say } from '../output';
import { detectOrigin } from '../../upgrade/origin';
import { describeOrigin, formatAdoptionReport } from '../reports/adoption';
import { action, interruptSignal, withSession } from '../session';
import { verifyAndReport } from './verify';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** What `migrate` and `revert` say while the migrator works. */
export function migratorEvents(): MigratorEvents {
  return {
    waiting: () => say('Another migrator holds the lock; waiting for it to finish…'),
    adopting: (report) => say(formatAdoptionReport(report)),
    renamed: (renames) =>
      say(
        `Renamed ${renames.map((r) => `${r.table}.${r.from} to ${r.to}`).join(', ')} ` +
          '(catalog only).',
      ),
    converted: (conversions) =>
      say(
        `Converted the timestamps of ${conversions.map((c) => c.table).join(', ')} to ` +
          `timestamptz (read as ${conversions[0].timezone}).`,
      ),
    baselined: (name) => say(`Adopted the existing tables: recorded ${name} as applied (not run).`),
    repaired: ({ name, missing }) =>
      say(
        `Repaired ${name}: it is recorded as applied but ` +
          `${missing.map((o) => o.name).join(', ')} were missing (an interrupted revert?); ` +
          'ran it again to make them.',
      ),
    incomplete: ({ name, missing }) =>
      say(
        `WARNING: ${name} is recorded as applied but ${missing.map((o) => o.name).join(', ')} ` +
          'are missing (an interrupted revert?). Run `pixcrawler-db revert` until it is ' +
          'reverted (each step of a revert can run again), then `pixcrawler-db migrate`.',
      ),
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

export interface AdoptionFlags {
  baseline?: boolean;
  legacyTimezone?: string;
  allowRewrite?: boolean;
  rewriteLimitRows?: number;
  rewriteLimitMb?: number;
}

/** The adoption flags `migrate` and `plan` share. */
export function adoptionOptions(command: Command): Command {
  return command
    .option(
      '--baseline',
      'adopt a database that already holds PixCrawler tables (pre-001, made by the web app’s ORM, ' +
        'or by PixCrawler’s Alembic 001): classify how they differ, convert what converts in ' +
        'place, record the first migration as applied, then run the rest',
    )
    .option(
      '--legacy-timezone <zone>',
      'with --baseline: the zone `timestamp without time zone` values were written in (default ' +
        'UTC, a catalog-only change; any other zone rewrites the tables)',
    )
    .option(
      '--allow-rewrite',
      'accept conversions that rewrite a table under an ACCESS EXCLUSIVE lock: timestamps read in ' +
        'a --legacy-timezone other than UTC, and a column widening (export_jobs.file_size to ' +
        'bigint) on a table over the rewrite limit',
    )
    .option(
      '--rewrite-limit-rows <n>',
      'the most rows a widening may rewrite without --allow-rewrite (default ' +
        'PIXCRAWLER_REWRITE_LIMIT_ROWS or 100000)',
      wholeNumber,
    )
    .option(
      '--rewrite-limit-mb <n>',
      'the largest table, in MB, a widening may rewrite without --allow-rewrite (default ' +
        'PIXCRAWLER_REWRITE_LIMIT_MB or 64)',
      wholeNumber,
    );
}

function wholeNumber(value: string): number {
  const parsed = Number(value.replaceAll('_', ''));
  if (!/^\d[\d_]*$/.test(value) || !Number.isSafeInteger(parsed)) {
    throw new InvalidArgumentError('expected a whole number, such as 100000');
  }
  return parsed;
}

/** The adoption flags as migrator options. */
export const adoptionFlags = (flags: AdoptionFlags) => ({
  baseline: flags.baseline,
  legacyTimezone: flags.legacyTimezone,
  allowRewrite: flags.allowRewrite,
  rewriteLimit: {
    ...(flags.rewriteLimitRows !== undefined ? { rows: flags.rewriteLimitRows } : {}),
    ...(flags.rewriteLimitMb !== undefined ? { bytes: flags.rewriteLimitMb * 2 ** 20 } : {}),
  },
});

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
        withSession(async ({ dataSource }) => {
          let baselined: string | null = null;
          // With --baseline the adoption report names what it found.
          if (!options.baseline) say(`Found: ${describeOrigin(await detectOrigin(dataSource))}.`);
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
            { ...adoptionFlags(options), signal: interruptSignal() },
          );
          if (applied.length > 0) say(`Applied ${applied.length} migration(s).`);
          if (!options.verify) return outcome(ExitCode.ok, { applied, baselined });
          const verified = await verifyAndReport(dataSource);
          return outcome(verified.exitCode, { applied, baselined, verify: verified.result });
        }),
      ),
    );
}
