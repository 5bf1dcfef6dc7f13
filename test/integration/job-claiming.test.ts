import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { ExportJobRepository } from '../../src/repositories/export-job.repository';
import { ValidationJobRepository } from '../../src/repositories/validation-job.repository';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { capturingDataSource, indexesInPlan } from '../helpers/query-capture';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const WORKERS = 8;

describe('claiming jobs with FOR UPDATE SKIP LOCKED', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let workers: DataSource[];

  beforeAll(async () => {
    db = await createTestDatabase('claiming');
    await db.migrate();
    ds = await db.connect();
    // One connection each: the workers really run concurrently, on separate sessions.
    workers = await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        const worker = new DataSource(dataSourceOptions({ url: db.url, poolSize: 1 }));
        return worker.initialize();
      }),
    );
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.destroy()));
    await db.drop();
  });

  async function claimAll<T extends { id: number }>(
    claim: (worker: DataSource) => Promise<T | null>,
  ) {
    const perWorker = await Promise.all(
      workers.map(async (worker) => {
        const claimed: number[] = [];
        for (let job; (job = await claim(worker));) claimed.push(job.id);
        return claimed;
      }),
    );
    return perWorker.flat();
  }

  it('8 workers claiming 1,000 pending validation jobs claim every job exactly once', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const created = await db.query<{ id: number }>(
      `INSERT INTO validation_jobs (crawl_job_id, name)
       SELECT $1, 'job ' || i FROM generate_series(1, 1000) i RETURNING id`,
      [crawlJob.id],
    );
    const claimed = await claimAll((worker) => new ValidationJobRepository(worker).claimNext());
    expect(claimed).toHaveLength(1000);
    expect(new Set(claimed).size).toBe(1000);
    expect([...claimed].sort((a, b) => a - b)).toEqual(
      created.map((row) => row.id).sort((a, b) => a - b),
    );
    const [states] = await db.query<{ running: number; started: number }>(
      `SELECT count(*) FILTER (WHERE status = 'running')::int AS running,
              count(started_at)::int AS started FROM validation_jobs`,
    );
    expect(states).toEqual({ running: 1000, started: 1000 });
  });

  it('8 workers claiming 1,000 pending export jobs claim every job exactly once', async () => {
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    await db.query(
      `INSERT INTO export_jobs (crawl_job_id, user_id, name)
       SELECT $1, $2, 'export ' || i FROM generate_series(1, 1000) i`,
      [crawlJob.id, user.id],
    );
    const claimed = await claimAll((worker) => new ExportJobRepository(worker).claimNext());
    expect(claimed).toHaveLength(1000);
    expect(new Set(claimed).size).toBe(1000);
  });

  it('a worker claims the oldest pending job and skips jobs that are not pending', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const rows = await db.query<{ id: number }>(
      `INSERT INTO validation_jobs (crawl_job_id, name, status)
       VALUES ($1, 'done', 'completed'), ($1, 'first', 'pending'), ($1, 'second', 'pending') RETURNING id`,
      [crawlJob.id],
    );
    const repo = new ValidationJobRepository(ds);
    expect((await repo.claimNext())?.id).toBe(rows[1].id);
    expect((await repo.claimNext())?.id).toBe(rows[2].id);
    expect(await repo.claimNext()).toBeNull();
  });

  describe('on a table holding 100,000 finished jobs', () => {
    /** EXPLAIN ANALYZE of the exact statement claimNext() sends, rolled back. */
    async function claimPlan(claim: (worker: DataSource) => Promise<unknown>) {
      const capture = await capturingDataSource(db.url);
      try {
        const runner = capture.dataSource.createQueryRunner();
        await runner.startTransaction();
        try {
          const { sql, params } = await capture.lastQuery(() => claim(capture.dataSource));
          // Undo the claim, then explain the same statement on the same rows.
          await runner.rollbackTransaction();
          await runner.startTransaction();
          const [row] = (await runner.query(
            `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`,
            params,
          )) as { 'QUERY PLAN': unknown }[];
          return row['QUERY PLAN'];
        } finally {
          await runner.rollbackTransaction();
          await runner.release();
        }
      } finally {
        await capture.dataSource.destroy();
      }
    }

    /** Shared buffers the whole statement touched: a walk past the finished jobs reads hundreds. */
    const buffersRead = (plan: unknown) => {
      const top = (plan as [{ Plan: Record<string, number> }])[0].Plan;
      return top['Shared Hit Blocks'] + top['Shared Read Blocks'];
    };

    beforeAll(async () => {
      const { user, crawlJob } = await makeOwnedCrawlJob(ds);
      // A queue as it looks after months in service: finished jobs first, a few pending last.
      for (const table of ['validation_jobs', 'export_jobs']) {
        await db.query(`UPDATE ${table} SET status = 'completed' WHERE status <> 'completed'`);
        const columns = table === 'export_jobs' ? ', user_id' : '';
        const values = table === 'export_jobs' ? ', $2' : '';
        await db.query(
          `INSERT INTO ${table} (crawl_job_id, name, status${columns})
           SELECT $1, 'done ' || i, CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'completed' END${values}
             FROM generate_series(1, 100000) i`,
          table === 'export_jobs' ? [crawlJob.id, user.id] : [crawlJob.id],
        );
        await db.query(
          `INSERT INTO ${table} (crawl_job_id, name${columns})
           SELECT $1, 'pending ' || i${values} FROM generate_series(1, 5) i`,
          table === 'export_jobs' ? [crawlJob.id, user.id] : [crawlJob.id],
        );
        await db.query(`VACUUM ANALYZE ${table}`);
      }
    });

    it.each([
      [
        'validation',
        'ix_validation_job_pending',
        (w: DataSource) => new ValidationJobRepository(w).claimNext(),
      ],
      [
        'export',
        'ix_export_job_pending',
        (w: DataSource) => new ExportJobRepository(w).claimNext(),
      ],
    ] as const)(
      'the %s claim reads the partial index of pending jobs, not the finished ones',
      async (_kind, index, claim) => {
        const plan = await claimPlan(claim);
        expect(indexesInPlan(plan)).toContain(index);
        expect(indexesInPlan(plan)).not.toContain(index.replace('_pending', '_status'));
        // A handful of pages, where walking the primary key past 100,000 finished jobs reads hundreds.
        expect(buffersRead(plan)).toBeLessThan(50);
      },
    );
  });
});
