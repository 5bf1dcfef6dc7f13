import { Client } from 'pg';
import { profileId } from '../src/testing/legacy-builder';
import { ActivityLogRepository } from '../src/repositories/activity-log.repository';
import { CrawlJobRepository } from '../src/repositories/crawl-job.repository';
import { ImageRepository } from '../src/repositories/image.repository';
import { datasetSizes, type BenchContext } from './lib/context';
import { newImages } from './lib/fixtures';
import { change, fmtBytes, fmtInt, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { now, perSecond } from './lib/timing';

/**
 * The indexes the upgrade adds to the five existing tables. Primary keys existed before, and
 * ix_profiles_email replaces the old unique constraint's index (same column, same size), so
 * neither is an addition.
 */
const NEW_INDEXES: Record<string, string[]> = {
  profiles: [],
  projects: ['ix_project_user_id'],
  crawl_jobs: ['ix_crawl_job_status', 'ix_crawl_job_project_status'],
  images: ['ix_image_crawl_job_id'],
  activity_logs: ['ix_activity_log_user_id', 'ix_activity_log_timestamp'],
};
const IMAGE_BATCH = 500;
const ROUNDS = 4;

async function oneValue<T>(url: string, sql: string): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows[0] as T;
  } finally {
    await client.end();
  }
}

interface SizeRow {
  table: string;
  total: string;
  heap: string;
  pk: string;
  added: string;
}

async function sizes(url: string): Promise<SizeRow[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const rows: SizeRow[] = [];
    for (const [table, indexes] of Object.entries(NEW_INDEXES)) {
      const { rows: r } = await client.query<SizeRow>(
        `SELECT $1::text AS table,
                pg_total_relation_size($1::regclass) AS total,
                pg_table_size($1::regclass) AS heap,
                pg_relation_size(('pk_' || $1)::regclass) AS pk,
                (SELECT COALESCE(sum(pg_relation_size(i::regclass)), 0) FROM unnest($2::text[]) i) AS added`,
        [table, indexes],
      );
      rows.push(r[0]);
    }
    return rows;
  } finally {
    await client.end();
  }
}

async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const migrated = await ctx.migratedDataset();
  const dataset = datasetSizes(ctx.sizes);
  const withUrl = await ctx.createDatabase('write_with', new URL(migrated).pathname.slice(1));
  const withoutUrl = await ctx.createDatabase('write_without', new URL(migrated).pathname.slice(1));
  const sizeRows = await sizes(withUrl);
  const drop = Object.values(NEW_INDEXES).flat();
  await ctx.adminQueryOn(withoutUrl, drop.map((name) => `DROP INDEX "${name}";`).join('\n'));

  const imageRows = ctx.sizes.writeRows * 5;
  const activityRows = ctx.sizes.writeRows;
  const targets = await Promise.all(
    [withUrl, withoutUrl].map(async (url) => {
      const dataSource = await ctx.connect(url, 1);
      return {
        url,
        dataSource,
        images: new ImageRepository(dataSource),
        activity: new ActivityLogRepository(dataSource),
        crawlJobs: new CrawlJobRepository(dataSource),
        imageMs: 0,
        activityMs: 0,
        updateMs: 0,
        updates: 0,
        cancelled: false,
      };
    }),
  );
  // Status changes (cancel, then retry, and again) of the jobs that are pending or running: each
  // UPDATE changes an indexed column, so it also writes both crawl_jobs status indexes.
  const changing: Array<{ id: number }> = await targets[0].dataSource.query(
    `SELECT id FROM crawl_jobs WHERE status IN ('pending', 'running') ORDER BY id`,
  );
  const passes = Math.max(2, 2 * Math.round(activityRows / ROUNDS / changing.length / 2));
  const crawlJobId = Math.ceil(dataset.crawlJobs / 2);
  const userId = profileId(Math.ceil(dataset.profiles / 2));
  // Alternate the two databases round by round, so both see the same machine conditions.
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      let t = now();
      for (let n = 0; n < imageRows / ROUNDS; n += IMAGE_BATCH) {
        await target.images.ingest(crawlJobId, newImages(round * imageRows + n, IMAGE_BATCH));
      }
      target.imageMs += now() - t;
      t = now();
      for (let n = 0; n < activityRows / ROUNDS; n++) {
        await target.activity.record({
          userId,
          action: 'crawl_job.started',
          resourceType: 'crawl_job',
          resourceId: n,
          metadata: { round },
        });
      }
      target.activityMs += now() - t;
      t = now();
      for (let pass = 0; pass < passes; pass++) {
        const transition = target.cancelled ? 'retry' : 'cancel';
        for (const { id } of changing) await target.crawlJobs.transition(id, transition);
        target.cancelled = !target.cancelled;
        target.updates += changing.length;
      }
      target.updateMs += now() - t;
    }
  }
  for (const target of targets) {
    const counts = await oneValue<{ images: number; logs: number }>(
      target.url,
      `SELECT (SELECT count(*)::int FROM images) AS images,
              (SELECT count(*)::int FROM activity_logs) AS logs`,
    );
    if (
      counts.images !== dataset.images + imageRows ||
      counts.logs !== dataset.activityLogs + activityRows
    ) {
      throw new BenchmarkBroken(`wrong row counts after the inserts: ${JSON.stringify(counts)}`);
    }
  }
  const [w, wo] = targets;
  const throughput = [
    {
      what: `images: ImageRepository.ingest, ${IMAGE_BATCH} rows per statement (rows/s)`,
      a: perSecond(imageRows, w.imageMs),
      b: perSecond(imageRows, wo.imageMs),
    },
    {
      what: 'activity logs: ActivityLogRepository.record, one row per statement (rows/s)',
      a: perSecond(activityRows, w.activityMs),
      b: perSecond(activityRows, wo.activityMs),
    },
    {
      what: 'crawl jobs: CrawlJobRepository.transition (cancel / retry), one row per statement (rows/s)',
      a: perSecond(w.updates, w.updateMs),
      b: perSecond(wo.updates, wo.updateMs),
    },
  ];

  const total = { all: 0, heap: 0, pk: 0, added: 0 };
  const sizeTable = sizeRows.map((row) => {
    const [all, heap, pk, added] = [row.total, row.heap, row.pk, row.added].map(Number);
    total.all += all;
    total.heap += heap;
    total.pk += pk;
    total.added += added;
    return [
      row.table,
      fmtBytes(all - added),
      fmtBytes(added),
      fmtBytes(all),
      change(all, all - added),
      '~15-20%',
    ];
  });
  sizeTable.push([
    'all five',
    fmtBytes(total.all - total.added),
    fmtBytes(total.added),
    fmtBytes(total.all),
    change(total.all, total.all - total.added),
    '~15-20%',
  ]);

  return [
    {
      title: 'Write cost of the indexes: insert and update throughput with vs without them',
      headers: [
        'write path',
        'with indexes',
        'without (baseline)',
        'with / without',
        'guide claims',
      ],
      rows: throughput.map((t) => [
        t.what,
        fmtInt(t.a),
        fmtInt(t.b),
        change(t.a, t.b),
        '~5-10% slower',
      ]),
      notes: [
        `Two copies of the upgraded dataset, one with the upgrade's indexes on the five existing tables dropped ` +
          `(primary keys and ix_profiles_email stay); ${imageRows.toLocaleString('en-US')} images and ` +
          `${activityRows.toLocaleString('en-US')} activity logs inserted into each, and ${targets[0].updates.toLocaleString('en-US')} ` +
          `crawl job status changes (${changing.length.toLocaleString('en-US')} jobs, cancel then retry), each statement its own transaction, ` +
          `the two copies alternating in ${ROUNDS} rounds.`,
      ],
    },
    {
      title: 'Storage: table size before and after the upgrade’s indexes (pg_total_relation_size)',
      headers: [
        'table',
        'without new indexes',
        'new indexes',
        'with (total)',
        'growth',
        'guide claims',
      ],
      rows: sizeTable,
      notes: [
        '"Without new indexes" = heap + TOAST + the primary key (and, for profiles, the unique email index, which ' +
          'ix_profiles_email replaces), as before the upgrade; growth = new indexes / that.',
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'write-cost',
  title: '2. Write cost and size of the indexes',
  run,
};

if (require.main === module) runStandalone(benchmark);
