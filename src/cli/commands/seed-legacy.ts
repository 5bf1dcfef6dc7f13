import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { buildAlembicDatabase } from '../../testing/alembic-database-builder';
import {
  buildEmptyDatabase,
  buildLegacyDatabase,
  LegacyBuildRefusedError,
  legacySizes,
  type LegacySizes,
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

const FLAVOURS = ['empty', 'legacy', 'orm', 'alembic'] as const;
type Flavour = (typeof FLAVOURS)[number];

interface SeedOptions {
  images: number;
  profiles?: number;
  projects?: number;
  crawlJobs?: number;
  activityLogs?: number;
  broken: number;
  dropExisting?: boolean;
  flavour: Flavour;
}

function flavour(value: string): Flavour {
  if (!(FLAVOURS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${FLAVOURS.join(', ')}`);
  }
  return value as Flavour;
}

type BuildOptions = LegacySizes & { broken: number; dropExisting?: boolean };
type Built = { rows: Record<string, number>; planted: Record<string, number> };

/** The flavours the server builds with a few statements (no progress to show). */
const SERVER_SIDE_BUILDS: Record<
  Exclude<Flavour, 'legacy'>,
  { what: string; build: (url: string, options: BuildOptions) => Promise<Built>; next: string }
> = {
  empty: {
    what: 'an empty database',
    build: (url, options) => buildEmptyDatabase(url, options),
    next: '`pixcrawler-db migrate` creates the schema from nothing.',
  },
  orm: {
    what: 'an ORM-made database',
    build: buildOrmDatabase,
    next:
      '`pixcrawler-db preflight`, `pixcrawler-db plan --baseline`, then ' +
      '`pixcrawler-db migrate --baseline`.',
  },
  alembic: {
    what: "a database PixCrawler's Alembic 001 built",
    build: buildAlembicDatabase,
    next:
      '`pixcrawler-db status`, `pixcrawler-db preflight`, `pixcrawler-db plan --baseline`, ' +
      'then `pixcrawler-db migrate --baseline`.',
  },
};

const describeSizes = (sizes: LegacySizes, broken: number) =>
  `: ${Object.entries(sizes)
    .map(([table, n]) => `${n} ${table}`)
    .join(', ')}${broken ? `, ${broken} broken row(s) per rule` : ''}`;

/**
 * Runs one build, timed: a refusal becomes an operator error (after `done`, which runs however
 * the build ends); on success it says what was loaded and what to run next.
 */
async function buildTimed(build: () => Promise<Built>, next: string, done?: () => void) {
  const started = Date.now();
  let result: Built;
  try {
    result = await build();
  } catch (error) {
    if (error instanceof LegacyBuildRefusedError) throw new OperatorError(error.message);
    throw error;
  } finally {
    done?.();
  }
  const rows = Object.values(result.rows).reduce((a, b) => a + b, 0);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  say(`${rows > 0 ? `Loaded ${rows} rows` : 'Done'} in ${seconds}s. Next: ${next}`);
  return outcome(ExitCode.ok, result);
}

export function registerSeedLegacy(program: Command): void {
  program
    .command('seed-legacy')
    .description(
      'build a database as one found in the wild (before this tool managed it) with realistic ' +
        'rows, to try the upgrade on; by default the pre-001 legacy one (the five old tables, ' +
        'no FKs, indexes or checks)',
    )
    .option('--images <n>', 'images (the other tables scale with it)', count, 100_000)
    .option('--profiles <n>', 'profiles (default: projects / 2)', count)
    .option('--projects <n>', 'projects (default: crawl jobs / 5)', count)
    .option('--crawl-jobs <n>', 'crawl jobs (default: images / 200)', count)
    .option('--activity-logs <n>', 'activity logs (default: images / 2)', count)
    .option('--broken <n>', 'extra rows breaking each new rule (orphans, bad values)', count, 0)
    .option(
      '--drop-existing',
      "drop what an earlier seed-legacy made first (PixCrawler's tables, the orm flavour's extra " +
        'tables, the migrations tables, alembic_version); never a migrated or a real database',
    )
    .option(
      `--flavour <${FLAVOURS.join('|')}>`,
      'empty: no PixCrawler table; legacy: the idealised pre-001 schema (SPEC.md "The database ' +
        'before this change"); orm: as the web app\'s ORM made production (SPEC.md "Databases in ' +
        'the wild": timestamps without time zone, the ORM\'s foreign keys and names, extra columns ' +
        "and tables); alembic: as PixCrawler's own Alembic migration 001 builds it (all seven " +
        'tables, its indexes and keys under their names, metadata_, alembic_version)',
      flavour,
      'legacy',
    )
    .action(
      action(async (options: SeedOptions) =>
        withSession(async ({ target }) => {
          const sizes = legacySizes(options);
          const buildOptions = {
            ...sizes,
            broken: options.broken,
            dropExisting: options.dropExisting,
          };
          if (options.flavour !== 'legacy') {
            const { what, build, next } = SERVER_SIDE_BUILDS[options.flavour];
            say(
              `Building ${what}` +
                (options.flavour === 'empty' ? '' : describeSizes(sizes, options.broken)),
            );
            return buildTimed(() => build(target.url, buildOptions), next);
          }
          say(`Building a legacy database${describeSizes(sizes, options.broken)}`);
          const bar = new SingleBar(
            { format: '  {bar} {percentage}% | {value}/{total} rows | {table}', hideCursor: true },
            Presets.shades_classic,
          );
          bar.start(
            Object.values(sizes).reduce((a, b) => a + b, 0),
            0,
            { table: '' },
          );
          const loaded: Record<string, number> = {};
          return buildTimed(
            () =>
              buildLegacyDatabase(target.url, {
                ...buildOptions,
                onProgress: (table, done) => {
                  loaded[table] = done;
                  bar.update(
                    Object.values(loaded).reduce((a, b) => a + b, 0),
                    { table },
                  );
                },
              }),
            '`pixcrawler-db preflight`, then `pixcrawler-db migrate --baseline`.',
            () => bar.stop(),
          );
        }),
      ),
    );
}
