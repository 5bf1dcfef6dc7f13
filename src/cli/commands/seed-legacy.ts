import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import {
  buildLegacyDatabase,
  LegacyBuildRefusedError,
  legacySizes,
} from '../../testing/legacy-builder';
import { buildOrmDatabase } from '../../testing/orm-database-builder';
import { ExitCode, outcome, say } from '../output';
import { action, OperatorError, withSession } from '../session';

function count(value: string): number {
  const parsed = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new InvalidArgumentError('expected a whole number');
  }
  return parsed;
}

interface SeedOptions {
  images: number;
  profiles?: number;
  projects?: number;
  crawlJobs?: number;
  activityLogs?: number;
  broken: number;
  dropExisting?: boolean;
  flavour: 'legacy' | 'orm';
}

function flavour(value: string): 'legacy' | 'orm' {
  if (value !== 'legacy' && value !== 'orm') {
    throw new InvalidArgumentError('expected legacy or orm');
  }
  return value;
}

export function registerSeedLegacy(program: Command): void {
  program
    .command('seed-legacy')
    .description(
      'build a database in the state before this change (the five old tables, no FKs, indexes ' +
        'or checks) with realistic rows, to try the upgrade on',
    )
    .option('--images <n>', 'images (the other tables scale with it)', count, 100_000)
    .option('--profiles <n>', 'profiles (default: projects / 2)', count)
    .option('--projects <n>', 'projects (default: crawl jobs / 5)', count)
    .option('--crawl-jobs <n>', 'crawl jobs (default: images / 200)', count)
    .option('--activity-logs <n>', 'activity logs (default: images / 2)', count)
    .option('--broken <n>', 'extra rows breaking each new rule (orphans, bad values)', count, 0)
    .option('--drop-existing', 'drop the PixCrawler tables and the migrations table first')
    .option(
      '--flavour <legacy|orm>',
      'legacy: the idealised legacy schema (SPEC.md "The database before this change"); orm: ' +
        'as the web app\'s ORM made production (SPEC.md "Databases in the wild": timestamps ' +
        "without time zone, the ORM's foreign keys and names, extra columns and tables)",
      flavour,
      'legacy',
    )
    .action(
      action(async (options: SeedOptions) =>
        withSession(async ({ target }) => {
          const sizes = legacySizes(options);
          if (options.flavour === 'orm') {
            say(
              `Building an ORM-made database: ${Object.entries(sizes)
                .map(([table, n]) => `${n} ${table}`)
                .join(', ')}${options.broken ? `, ${options.broken} broken row(s) per rule` : ''}`,
            );
            const started = Date.now();
            const result = await buildOrmDatabase(target.url, {
              ...sizes,
              broken: options.broken,
              dropExisting: options.dropExisting,
            }).catch((error: unknown) => {
              if (error instanceof LegacyBuildRefusedError) throw new OperatorError(error.message);
              throw error;
            });
            const rows = Object.values(result.rows).reduce((a, b) => a + b, 0);
            say(
              `Loaded ${rows} rows in ${((Date.now() - started) / 1000).toFixed(1)}s. Next: ` +
                '`pixcrawler-db preflight`, `pixcrawler-db plan --baseline`, then ' +
                '`pixcrawler-db migrate --baseline`.',
            );
            return outcome(ExitCode.ok, result);
          }
          const total = Object.values(sizes).reduce((a, b) => a + b, 0);
          say(
            `Building a legacy database: ${Object.entries(sizes)
              .map(([table, n]) => `${n} ${table}`)
              .join(', ')}${options.broken ? `, ${options.broken} broken row(s) per rule` : ''}`,
          );
          const bar = new SingleBar(
            { format: '  {bar} {percentage}% | {value}/{total} rows | {table}', hideCursor: true },
            Presets.shades_classic,
          );
          bar.start(total, 0, { table: '' });
          const loaded: Record<string, number> = {};
          const started = Date.now();
          try {
            const result = await buildLegacyDatabase(target.url, {
              ...sizes,
              broken: options.broken,
              dropExisting: options.dropExisting,
              onProgress: (table, done) => {
                loaded[table] = done;
                bar.update(
                  Object.values(loaded).reduce((a, b) => a + b, 0),
                  { table },
                );
              },
            });
            bar.stop();
            const rows = Object.values(result.rows).reduce((a, b) => a + b, 0);
            say(
              `Loaded ${rows} rows in ${((Date.now() - started) / 1000).toFixed(1)}s. ` +
                'Next: `pixcrawler-db preflight`, then `pixcrawler-db migrate --baseline`.',
            );
            return outcome(ExitCode.ok, result);
          } catch (error) {
            bar.stop();
            if (error instanceof LegacyBuildRefusedError) throw new OperatorError(error.message);
            throw error;
          }
        }),
      ),
    );
}
