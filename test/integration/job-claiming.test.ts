import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { ExportJobRepository } from '../../src/repositories/export-job.repository';
import { ValidationJobRepository } from '../../src/repositories/validation-job.repository';
import { makeOwnedCrawlJob } from '../helpers/factories';
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
});
