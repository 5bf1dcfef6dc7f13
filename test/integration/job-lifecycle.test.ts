import type { DataSource, EntityManager } from 'typeorm';
import { JOB_STATUSES, type JobStatus } from '../../src/entities/value-sets';
import { IllegalTransitionError, NotFoundError } from '../../src/errors';
import { CrawlJobRepository } from '../../src/repositories/crawl-job.repository';
import { ExportJobRepository } from '../../src/repositories/export-job.repository';
import {
  canTransition,
  JOB_TRANSITION_NAMES,
  JOB_TRANSITIONS,
  type JobTransition,
} from '../../src/repositories/job-lifecycle';
import { ValidationJobRepository } from '../../src/repositories/validation-job.repository';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

interface Kind {
  table: 'crawl_jobs' | 'validation_jobs' | 'export_jobs';
  create(): Promise<number>;
  transition(id: number, t: JobTransition, m?: EntityManager): Promise<{ status: JobStatus }>;
  recoverStale(leaseSeconds: number): Promise<{ id: number; status: JobStatus }[]>;
}

describe('the job lifecycle', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const kinds: Record<string, Kind> = {};

  beforeAll(async () => {
    db = await createTestDatabase('lifecycle');
    await db.migrate();
    ds = await db.connect();
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    const crawlJobs = new CrawlJobRepository(ds);
    const validations = new ValidationJobRepository(ds);
    const exportsRepo = new ExportJobRepository(ds);
    kinds['crawl job'] = {
      table: 'crawl_jobs',
      create: async () =>
        (await crawlJobs.insert({ projectId: crawlJob.projectId, name: 'c', keywords: ['k'] })).id,
      transition: (id, t, m) => crawlJobs.transition(id, t, m),
      recoverStale: (lease) => crawlJobs.recoverStale(lease),
    };
    kinds['validation job'] = {
      table: 'validation_jobs',
      create: async () =>
        (await validations.insert({ crawlJobId: crawlJob.id, name: 'v', rules: {} })).id,
      transition: (id, t, m) => validations.transition(id, t, { errorMessage: 'boom' }, m),
      recoverStale: (lease) => validations.recoverStale(lease),
    };
    kinds['export job'] = {
      table: 'export_jobs',
      create: async () =>
        (
          await exportsRepo.insert({
            crawlJobId: crawlJob.id,
            userId: user.id,
            name: 'e',
            format: 'csv',
            options: {},
          })
        ).id,
      transition: (id, t, m) => exportsRepo.transition(id, t, { errorMessage: 'boom' }, m),
      recoverStale: (lease) => exportsRepo.recoverStale(lease),
    };
  });
  afterAll(() => db.drop());

  const matrix = ['crawl job', 'validation job', 'export job'].flatMap((kind) =>
    JOB_TRANSITION_NAMES.flatMap((transition) =>
      JOB_STATUSES.map(
        (from) => [kind, transition, from, canTransition(from, transition)] as const,
      ),
    ),
  );

  it('allows exactly: start pending; complete/fail running; cancel pending or running; retry failed or cancelled', () => {
    const allowed = matrix
      .filter(([kind, , , ok]) => kind === 'crawl job' && ok)
      .map(([, transition, from]) => `${transition}:${from}`);
    expect(allowed.sort()).toEqual(
      [
        'start:pending',
        'complete:running',
        'fail:running',
        'cancel:pending',
        'cancel:running',
        'retry:failed',
        'retry:cancelled',
      ].sort(),
    );
  });

  it.each(matrix.filter(([, , , ok]) => ok))(
    'a %s may %s from %s',
    async (kind, transition, from) => {
      const id = await kinds[kind].create();
      await db.query(`UPDATE ${kinds[kind].table} SET status = $2 WHERE id = $1`, [id, from]);
      const job = await kinds[kind].transition(id, transition);
      expect(job.status).toBe(JOB_TRANSITIONS[transition].to);
    },
  );

  it.each(matrix.filter(([, , , ok]) => !ok))(
    'a %s may not %s from %s: IllegalTransitionError naming the status, row unchanged',
    async (kind, transition, from) => {
      const id = await kinds[kind].create();
      await db.query(`UPDATE ${kinds[kind].table} SET status = $2 WHERE id = $1`, [id, from]);
      const error = await kinds[kind].transition(id, transition).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IllegalTransitionError);
      expect(error).toMatchObject({ currentStatus: from, attempted: transition });
      expect((error as Error).message).toContain(`it is ${from}`);
      const [row] = await db.query<{ status: string }>(
        `SELECT status FROM ${kinds[kind].table} WHERE id = $1`,
        [id],
      );
      expect(row.status).toBe(from);
    },
  );

  it.each(['crawl job', 'validation job', 'export job'])(
    'a transition of a missing %s is NotFound',
    async (kind) => {
      await expect(kinds[kind].transition(2_000_000_000, 'start')).rejects.toEqual(
        new NotFoundError(kind, 2_000_000_000),
      );
    },
  );

  it('every transition sets updated_at, start sets started_at, fail records the error', async () => {
    const id = await kinds['validation job'].create();
    await db.query(
      `UPDATE validation_jobs SET updated_at = now() - interval '1 day' WHERE id = $1`,
      [id],
    );
    await kinds['validation job'].transition(id, 'start');
    await kinds['validation job'].transition(id, 'fail');
    const [row] = await db.query<{
      fresh: boolean;
      started: boolean;
      completed: boolean;
      error_message: string;
    }>(
      `SELECT updated_at > now() - interval '1 hour' AS fresh, started_at IS NOT NULL AS started,
              completed_at IS NOT NULL AS completed, error_message FROM validation_jobs WHERE id = $1`,
      [id],
    );
    expect(row).toEqual({ fresh: true, started: true, completed: true, error_message: 'boom' });
  });

  it('a retried job is pending again with its run state cleared, and can run to completion', async () => {
    const repo = new ExportJobRepository(ds);
    const id = await kinds['export job'].create();
    await repo.transition(id, 'start');
    await repo.recordProgress(id, { totalImages: 10, exportedImages: 4, progress: 40 });
    await repo.transition(id, 'fail', { errorMessage: 'disk full' });
    const retried = await repo.transition(id, 'retry');
    expect(retried).toMatchObject({
      status: 'pending',
      progress: 0,
      exportedImages: 0,
      totalImages: 0,
      errorMessage: null,
      startedAt: null,
      completedAt: null,
    });
    await repo.transition(id, 'start');
    expect((await repo.transition(id, 'complete')).status).toBe('completed');
  });

  it('of two workers starting the same job at once, exactly one wins and the other is told it is running', async () => {
    const other = await db.connect();
    const id = await kinds['validation job'].create();
    const results = await Promise.allSettled([
      new ValidationJobRepository(ds).transition(id, 'start'),
      new ValidationJobRepository(other).transition(id, 'start'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const [rejected] = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected.reason).toMatchObject({ currentStatus: 'running' });
  });

  it.each(['crawl job', 'validation job', 'export job'])(
    'recovery fails a running %s whose worker went silent past the lease, and leaves live and pending jobs alone',
    async (kind) => {
      const { table } = kinds[kind];
      const dead = await kinds[kind].create();
      const live = await kinds[kind].create();
      const oldPending = await kinds[kind].create();
      await kinds[kind].transition(dead, 'start');
      await kinds[kind].transition(live, 'start');
      await db.query(
        `UPDATE ${table} SET updated_at = now() - interval '2 hours' WHERE id = ANY($1)`,
        [[dead, oldPending]],
      );
      const recovered = await kinds[kind].recoverStale(3600);
      expect(recovered.map((job) => [job.id, job.status])).toEqual([[dead, 'failed']]);
      const rows = await db.query<{ id: number; status: string }>(
        `SELECT id, status FROM ${table} WHERE id = ANY($1) ORDER BY id`,
        [[dead, live, oldPending]],
      );
      expect(rows).toEqual([
        { id: dead, status: 'failed' },
        { id: live, status: 'running' },
        { id: oldPending, status: 'pending' },
      ]);
      if (table !== 'crawl_jobs') {
        const [row] = await db.query<{ error_message: string }>(
          `SELECT error_message FROM ${table} WHERE id = $1`,
          [dead],
        );
        expect(row.error_message).toMatch(/^worker lost: no heartbeat for more than 3600 seconds/);
      }
    },
  );
});
