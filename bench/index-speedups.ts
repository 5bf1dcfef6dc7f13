import type { EntityManager } from 'typeorm';
import { profileId } from '../src/testing/legacy-builder';
import { ActivityLogRepository } from '../src/repositories/activity-log.repository';
import { CrawlJobRepository } from '../src/repositories/crawl-job.repository';
import { ExportJobRepository } from '../src/repositories/export-job.repository';
import { ImageRepository } from '../src/repositories/image.repository';
import { ProjectRepository } from '../src/repositories/project.repository';
import { ValidationJobRepository } from '../src/repositories/validation-job.repository';
import { datasetSizes, type BenchContext } from './lib/context';
import { planOf, recordStatements } from './lib/plans';
import { fmt, fmtMs, ratio, type BenchTable } from './lib/report';
import { runStandalone, type Benchmark } from './lib/runner';
import { median, sample } from './lib/timing';

/** Every index the upgrade adds, by table (the primary keys existed before and stay). */
const NEW_INDEXES: Record<string, string[]> = {
  projects: ['ix_project_user_id'],
  crawl_jobs: ['ix_crawl_job_status', 'ix_crawl_job_project_status'],
  images: ['ix_image_crawl_job_id'],
  activity_logs: ['ix_activity_log_user_id', 'ix_activity_log_timestamp'],
  validation_jobs: [
    'ix_validation_job_status',
    'ix_validation_job_crawl_job_id',
    'ix_validation_job_pending',
  ],
  export_jobs: [
    'ix_export_job_status',
    'ix_export_job_user_id',
    'ix_export_job_crawl_job_id',
    'ix_export_job_pending',
  ],
};

interface Pattern {
  name: string;
  /** The guide's claim for this pattern, as a fraction of time saved (0.5 = "~50% faster"). */
  claim?: number;
  table: keyof typeof NEW_INDEXES;
  /** Runs the pattern once through its repository; claims are undone by the caller. */
  run: (m: EntityManager) => Promise<unknown>;
  /** Changes rows (a claim): each call runs inside a savepoint that is rolled back. */
  mutates?: boolean;
}

async function measure(
  pattern: Pattern,
  m: EntityManager,
  iterations: number,
): Promise<{ samples: number[] }> {
  const runner = m.queryRunner!;
  const once = pattern.mutates
    ? async () => {
        await runner.query('SAVEPOINT claim');
        await pattern.run(m);
        await runner.query('ROLLBACK TO SAVEPOINT claim');
      }
    : () => pattern.run(m);
  return { samples: await sample(once, { warmup: 2, iterations, budgetMs: 8_000 }) };
}

async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const url = await ctx.migratedDataset();
  const dataSource = await ctx.connect(url, 2);
  const sizes = datasetSizes(ctx.sizes);
  const projects = new ProjectRepository(dataSource);
  const crawlJobs = new CrawlJobRepository(dataSource);
  const activity = new ActivityLogRepository(dataSource);
  const images = new ImageRepository(dataSource);
  const validationJobs = new ValidationJobRepository(dataSource);
  const exportJobs = new ExportJobRepository(dataSource);

  // Mid-range parents, so neither end of the data flatters a plan.
  const userId = profileId(Math.ceil(sizes.profiles / 2));
  const projectId = Math.ceil(sizes.projects / 2);
  const crawlJobId = Math.ceil(sizes.crawlJobs / 2);
  const queueRows = Math.max(1000, Math.floor(sizes.images / 10));

  const patterns: Pattern[] = [
    {
      name: "a user's projects",
      claim: 0.5,
      table: 'projects',
      run: (m) => projects.listByUser(userId, { limit: 20, offset: 0 }, m),
    },
    {
      name: "a project's jobs by status",
      claim: 0.4,
      table: 'crawl_jobs',
      run: (m) =>
        crawlJobs.listByProject(projectId, { status: 'completed', limit: 20, offset: 0 }, m),
    },
    {
      name: 'jobs by status',
      claim: 0.4,
      table: 'crawl_jobs',
      run: (m) => crawlJobs.listByStatus('pending', { limit: 50 }, m),
    },
    {
      name: 'recent activity',
      claim: 0.6,
      table: 'activity_logs',
      run: (m) => activity.recent({ limit: 50 }, m),
    },
    {
      name: "a user's activity",
      table: 'activity_logs',
      run: (m) => activity.recentByUser(userId, { limit: 50 }, m),
    },
    {
      name: "a crawl job's images",
      table: 'images',
      run: (m) => images.listByCrawlJob(crawlJobId, { limit: 100 }, m),
    },
    {
      name: 'next pending validation job',
      claim: 0.4,
      table: 'validation_jobs',
      run: (m) => validationJobs.claimNext(m),
      mutates: true,
    },
    {
      name: 'next pending export job',
      claim: 0.4,
      table: 'export_jobs',
      run: (m) => exportJobs.claimNext(m),
      mutates: true,
    },
  ];

  const runner = dataSource.createQueryRunner();
  await runner.connect();
  const statements = recordStatements(runner);
  const m = runner.manager;
  const rows: Array<Array<string | number>> = [];
  const claimsSkipPendingIndex: string[] = [];
  await runner.startTransaction();
  try {
    // A job queue as it looks in service: mostly finished jobs, the newest 1% still pending.
    await runner.query(
      `INSERT INTO validation_jobs (crawl_job_id, name, status)
       SELECT 1 + g % $2, 'bench ' || g, CASE WHEN g > $1 * 0.99 THEN 'pending' ELSE 'completed' END
         FROM generate_series(1, $1) g`,
      [queueRows, sizes.crawlJobs],
    );
    await runner.query(
      `INSERT INTO export_jobs (crawl_job_id, user_id, name, format, status)
       SELECT 1 + g % $2, $3, 'bench ' || g, 'csv', CASE WHEN g > $1 * 0.99 THEN 'pending' ELSE 'completed' END
         FROM generate_series(1, $1) g`,
      [queueRows, sizes.crawlJobs, profileId(1)],
    );
    await runner.query('ANALYZE validation_jobs, export_jobs');

    for (const pattern of patterns) {
      const withIndex = await measure(pattern, m, ctx.sizes.queryIterations);
      const planWith = await planOf(runner, statements.last());
      await runner.query('SAVEPOINT no_index');
      for (const index of NEW_INDEXES[pattern.table]) await runner.query(`DROP INDEX "${index}"`);
      const withoutIndex = await measure(pattern, m, ctx.sizes.queryIterations);
      const planWithout = await planOf(runner, statements.last());
      await runner.query('ROLLBACK TO SAVEPOINT no_index');

      if (pattern.mutates && !/ix_\w+_pending/.test(planWith))
        claimsSkipPendingIndex.push(pattern.name);
      const a = median(withIndex.samples);
      const b = median(withoutIndex.samples);
      rows.push([
        pattern.name,
        fmtMs(a),
        fmtMs(b),
        ratio(b, a),
        `${fmt(Math.round((1 - a / b) * 100) || 0, 0)}%`,
        pattern.claim === undefined ? '(none)' : `~${pattern.claim * 100}%`,
        planWith,
        planWithout,
      ]);
    }
  } finally {
    await runner.rollbackTransaction();
    await runner.release();
    await dataSource.destroy();
  }

  return [
    {
      title: 'Index speed-ups: median latency through the repositories, indexes present vs dropped',
      headers: [
        'query pattern',
        'with indexes',
        'without (baseline)',
        'speed-up',
        'time saved',
        'guide claims',
        'plan with',
        'plan without',
      ],
      rows,
      notes: [
        `On the legacy dataset upgraded with migrate --baseline (${sizes.images.toLocaleString('en-US')} images, ` +
          `${sizes.activityLogs.toLocaleString('en-US')} activity logs, ${sizes.crawlJobs.toLocaleString('en-US')} crawl jobs, ` +
          `${sizes.projects.toLocaleString('en-US')} projects; ${queueRows.toLocaleString('en-US')} validation and export jobs, newest 1% pending).`,
        '"Without" drops every index the upgrade added to the queried table (primary keys stay, as before the upgrade) in a ' +
          'savepoint that is rolled back. Median of up to ' +
          `${ctx.sizes.queryIterations} calls each. "Time saved" = 1 - with/without; the guide's "~50% faster" read as 50% less time (2x).`,
        ...(claimsSkipPendingIndex.length
          ? [
              `Not using the partial index of pending jobs: ${claimsSkipPendingIndex.join(', ')}. Without it a claim ` +
                'walks an index past every finished job older than the oldest pending one: a claim costs more as ' +
                'finished jobs accumulate.',
            ]
          : []),
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'index-speedups',
  title: '1. Index speed-ups for the guide’s query patterns',
  run,
};

if (require.main === module) runStandalone(benchmark);
