import { Client } from 'pg';
import { profileId } from '../src/testing/legacy-builder';
import { EXISTING_TABLE_CONSTRAINTS } from '../src/migrations/1731542400001-JobTablesAndConstraints';
import { datasetSizes, type BenchContext } from './lib/context';
import { fmt, fmtInt, fmtMs, ratio, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { now, percentile } from './lib/timing';

/**
 * The baseline: what `migration:generate` emits for the same change to the existing tables,
 * run the way TypeORM runs a migration by default (one transaction). Plain ADD CONSTRAINT
 * validates every row while holding a lock that blocks writes, plain CREATE INDEX blocks writes
 * for the whole build, and the transaction keeps every lock until it commits. Only the part
 * that touches existing tables; a benchmark baseline, never a migration to run.
 */
function plainMigrationSql(): string[] {
  return [
    ...EXISTING_TABLE_CONSTRAINTS.map(
      ({ table, name, definition }) =>
        `ALTER TABLE "${table}" ADD CONSTRAINT "${name}" ${definition}`,
    ),
    'CREATE UNIQUE INDEX "ix_profiles_email" ON "profiles" ("email")',
    'CREATE INDEX "ix_project_user_id" ON "projects" ("user_id")',
    'CREATE INDEX "ix_crawl_job_status" ON "crawl_jobs" ("status")',
    'CREATE INDEX "ix_crawl_job_project_status" ON "crawl_jobs" ("project_id", "status")',
    'CREATE INDEX "ix_image_crawl_job_id" ON "images" ("crawl_job_id")',
    'CREATE INDEX "ix_activity_log_user_id" ON "activity_logs" ("user_id")',
    'CREATE INDEX "ix_activity_log_timestamp" ON "activity_logs" ("timestamp")',
  ];
}

interface Write {
  start: number;
  end: number;
}

interface Writer {
  name: string;
  writes: Write[];
  errors: unknown[];
}

const PAUSE_MS = 2;
/** Writers stop by themselves after this long, whatever happens to the migration. */
const MAX_LOAD_MS = 10 * 60_000;

/**
 * Live traffic on the legacy tables: one connection inserting images, one inserting activity
 * logs, one updating crawl jobs, each one statement (its own transaction) at a time with a short
 * pause, until stopped or MAX_LOAD_MS. Statements valid before and after the upgrade.
 */
function startLoad(url: string, sizes: ReturnType<typeof datasetSizes>) {
  let stopped = false;
  const deadline = now() + MAX_LOAD_MS;
  const random = (n: number) => 1 + Math.floor(Math.random() * n);
  const statements: Array<[string, () => [string, unknown[]]]> = [
    [
      'INSERT INTO images',
      () => {
        const n = random(1_000_000_000);
        return [
          `INSERT INTO images (crawl_job_id, original_url, filename, storage_url, width, height, file_size, format)
           VALUES ($1, $2, $3, $4, 640, 480, 50000, 'jpg')`,
          [
            random(sizes.crawlJobs),
            `https://live.example.org/${n}.jpg`,
            `live_${n}.jpg`,
            `s3://live/${n}.jpg`,
          ],
        ];
      },
    ],
    [
      'INSERT INTO activity_logs',
      () => [
        `INSERT INTO activity_logs (user_id, action, resource_type, resource_id, metadata)
         VALUES ($1, 'crawl_job.started', 'crawl_job', $2, '{"live":true}')`,
        [profileId(random(sizes.profiles)), String(random(sizes.crawlJobs))],
      ],
    ],
    [
      'UPDATE crawl_jobs',
      () => [
        `UPDATE crawl_jobs SET progress = $2, updated_at = now() WHERE id = $1`,
        [random(sizes.crawlJobs), random(100) - 1],
      ],
    ],
  ];
  const writers: Writer[] = statements.map(([name]) => ({ name, writes: [], errors: [] }));
  const done = Promise.all(
    statements.map(async ([, next], i) => {
      const client = new Client({ connectionString: url, application_name: 'bench live load' });
      await client.connect();
      try {
        while (!stopped && now() < deadline) {
          const [sql, params] = next();
          const start = now();
          try {
            await client.query(sql, params);
            writers[i].writes.push({ start, end: now() });
          } catch (error) {
            writers[i].errors.push(error);
          }
          await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
        }
      } finally {
        await client.end();
      }
    }),
  );
  return {
    writers,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

interface LiveRun {
  ms: number;
  writers: Writer[];
  window: [number, number];
}

/** Runs `migrate` while the load runs: 1 s of load before, 0.5 s after. */
async function underLoad(
  url: string,
  sizes: ReturnType<typeof datasetSizes>,
  migrate: () => Promise<void>,
): Promise<LiveRun> {
  const load = startLoad(url, sizes);
  let result: LiveRun;
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const start = now();
    await migrate();
    const end = now();
    await new Promise((resolve) => setTimeout(resolve, 500));
    result = { ms: end - start, writers: load.writers, window: [start, end] };
  } finally {
    await load.stop();
  }
  const errors = load.writers.flatMap((w) => w.errors);
  if (errors.length) {
    throw new BenchmarkBroken(
      `${errors.length} write(s) failed during the migration: ${String(errors[0])}`,
    );
  }
  return result;
}

/** Latencies of the writes that overlapped the migration. */
function during(run: LiveRun, writer?: Writer): number[] {
  const [from, to] = run.window;
  return (writer ? [writer] : run.writers)
    .flatMap((w) => w.writes)
    .filter((w) => w.start < to && w.end > from)
    .map((w) => w.end - w.start);
}

async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const sizes = datasetSizes(ctx.sizes);
  const safeUrl = await ctx.legacyCopy('live_safe');
  const plainUrl = await ctx.legacyCopy('live_plain');

  const safe = await underLoad(safeUrl, sizes, () => ctx.migrate(safeUrl, { baseline: true }));
  await ctx.dropDatabase(safeUrl);

  const plain = await underLoad(plainUrl, sizes, async () => {
    const client = new Client({ connectionString: plainUrl });
    await client.connect();
    try {
      await client.query('BEGIN');
      for (const sql of plainMigrationSql()) await client.query(sql);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
  });
  await ctx.dropDatabase(plainUrl);

  const a = during(safe);
  const b = during(plain);
  if (a.length === 0 || b.length === 0)
    throw new BenchmarkBroken('no write overlapped a migration');
  const rate = (r: LiveRun, samples: number[]) =>
    (samples.length * 1000) / (r.window[1] - r.window[0]);
  const line = (what: string, x: number, y: number, format: (v: number) => string) => [
    what,
    format(x),
    format(y),
    ratio(x, y),
  ];
  const perWriter = safe.writers.map((writer, i) => {
    const x = during(safe, writer);
    const y = during(plain, plain.writers[i]);
    return [
      writer.name,
      fmtMs(percentile(x, 99)),
      fmtMs(Math.max(...x)),
      fmtMs(percentile(y, 99)),
      fmtMs(Math.max(...y)),
    ];
  });
  return [
    {
      title: `Live migration of a ${fmtInt(sizes.images)}-image legacy database under write load`,
      headers: ['measure', 'lock-safe (migrate --baseline)', 'plain generated (baseline)', 'ratio'],
      rows: [
        line('migration duration', safe.ms, plain.ms, (v) => `${fmt(v / 1000, 2)} s`),
        line('writes during the migration', a.length, b.length, fmtInt),
        line('writes per second during it', rate(safe, a), rate(plain, b), fmtInt),
        line('write latency p50', percentile(a, 50), percentile(b, 50), fmtMs),
        line('write latency p99', percentile(a, 99), percentile(b, 99), fmtMs),
        line('write latency max', Math.max(...a), Math.max(...b), fmtMs),
      ],
      notes: [
        'Two identical copies of the legacy dataset. Three connections write in a loop (insert an image, insert an ' +
          `activity log, update a crawl job's progress; ${PAUSE_MS} ms pause after each) from 1 s before the migration ` +
          'to 0.5 s after it; the figures are over the writes that overlapped the migration.',
        'Lock-safe: runPendingMigrations with baseline (preflight, constraints NOT VALID, CREATE INDEX CONCURRENTLY, ' +
          'VALIDATE; new tables). Plain: the same constraints and indexes as migration:generate writes them ' +
          '(ADD CONSTRAINT, CREATE INDEX) in one transaction.',
      ],
    },
    {
      title: 'Live migration: write latency per statement during the migration',
      headers: ['statement', 'lock-safe p99', 'lock-safe max', 'plain p99', 'plain max'],
      rows: perWriter,
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'live-migration',
  title: '7. Live migration under write load: lock-safe vs plain',
  run,
};

if (require.main === module) runStandalone(benchmark);
