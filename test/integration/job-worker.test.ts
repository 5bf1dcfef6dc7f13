import type { DataSource } from 'typeorm';
import type { ValidationJob } from '../../src/entities/validation-job.entity';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ValidationJobRepository } from '../../src/repositories/validation-job.repository';
import { JobRunner, type JobRun, type RunnableJob } from '../../src/services/jobs/job-runner';
import {
  JobWorker,
  type JobWorkerEvents,
  type JobWorkerOptions,
} from '../../src/services/jobs/worker';
import {
  ValidationJobService,
  type ValidationProgress,
} from '../../src/services/validation-job.service';
import { runCli, spawnCli, type CliRun } from '../helpers/cli';
import { generateImages, makeCrawlJob, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const HOUR = 3_600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `check` returns something truthy, polling; fails after `timeoutMs`. */
async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function waitForOutput(run: CliRun, pattern: RegExp): Promise<RegExpMatchArray | null> {
  return eventually(
    () => {
      if (run.child.exitCode !== null) throw new Error(`worker exited early:\n${run.output()}`);
      return run.output().match(pattern);
    },
    60_000,
    `${pattern} in the worker's output`,
  );
}

describe('the job worker', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let userId: string;
  let crawlJobId: number;
  /** A crawl job with many images: validated one image per batch, it runs for a long while. */
  let bigCrawlJobId: number;
  const workers: JobWorker[] = [];
  const processes: CliRun[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('worker');
    await db.migrate();
    ds = await db.connect();
    const owned = await makeOwnedCrawlJob(ds);
    userId = owned.user.id;
    crawlJobId = owned.crawlJob.id;
    await new ImageRepository(ds).ingest(crawlJobId, generateImages(50, 'small'));
    bigCrawlJobId = (await makeCrawlJob(ds, owned.project.id, 'big')).id;
    await new ImageRepository(ds).ingest(bigCrawlJobId, generateImages(20_000, 'big'));
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop('test over')));
    for (const run of processes.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
    }
    // No test leaves work behind for the next one.
    await db.query(
      `UPDATE validation_jobs SET status = 'cancelled' WHERE status IN ('pending', 'running')`,
    );
  });
  afterAll(() => db.drop());

  /** A started in-process worker whose events are recorded. */
  async function startWorker(
    runners: ConstructorParameters<typeof JobWorker>[1],
    options: JobWorkerOptions = {},
  ) {
    const seen: Array<[keyof JobWorkerEvents, number[]]> = [];
    const ids = (x: unknown) =>
      Array.isArray(x) ? x.map((j: RunnableJob) => j.id) : [(x as RunnableJob).id];
    const worker = new JobWorker(ds, runners, {
      ...options,
      events: {
        started: (_k, job) => seen.push(['started', ids(job)]),
        finished: (_k, job) => seen.push(['finished', ids(job)]),
        recovered: (_k, jobs) => seen.push(['recovered', ids(jobs)]),
        abandoned: (_k, job) => seen.push(['abandoned', ids(job)]),
        ...options.events,
      },
    });
    workers.push(worker);
    await worker.start();
    const saw = (event: keyof JobWorkerEvents, id: number) =>
      seen.some(([e, list]) => e === event && list.includes(id));
    return { worker, seen, saw };
  }

  const statusOf = async (id: number) =>
    (
      await db.query<{ status: string; error_message: string | null }>(
        `SELECT status, error_message FROM validation_jobs WHERE id = $1`,
        [id],
      )
    )[0];

  it('picks up a job requested while it idles with a one-hour poll: the NOTIFY wakes it', async () => {
    const service = new ValidationJobService(ds);
    const { saw } = await startWorker([service.jobs], { pollIntervalMs: HOUR });
    await sleep(300); // idle: the start-up claim found nothing

    // Control: a row inserted without a NOTIFY stays pending, so polling is not what runs jobs.
    const [silent] = await db.query<{ id: number }>(
      `INSERT INTO validation_jobs (crawl_job_id, name) VALUES ($1, 'silent') RETURNING id`,
      [crawlJobId],
    );
    await sleep(1_000);
    expect((await statusOf(silent.id)).status).toBe('pending');

    const requested = await service.request(userId, { crawlJobId, name: 'notified', rules: {} });
    await eventually(() => saw('finished', requested.id), 10_000, 'the requested job to finish');
    expect((await statusOf(requested.id)).status).toBe('completed');
  });

  it('is not woken before the request commits: the NOTIFY is part of its transaction', async () => {
    const service = new ValidationJobService(ds);
    const { saw } = await startWorker([service.jobs], { pollIntervalMs: HOUR });
    const repository = new ValidationJobRepository(ds);
    const runner = ds.createQueryRunner();
    await runner.startTransaction();
    let id: number;
    try {
      id = (
        await repository.insert({ crawlJobId, name: 'in a transaction', rules: {} }, runner.manager)
      ).id;
      await repository.notifyPending(runner.manager);
      await sleep(700);
      expect(saw('started', id)).toBe(false);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    await eventually(() => saw('finished', id), 10_000, 'the committed job to finish');
  });

  it('a retry wakes it too', async () => {
    const service = new ValidationJobService(ds);
    const job = await service.request(userId, { crawlJobId, name: 'to retry', rules: {} });
    await service.cancel(userId, job.id);
    const { saw } = await startWorker([service.jobs], { pollIntervalMs: HOUR });
    await sleep(300);
    expect(saw('started', job.id)).toBe(false);
    await service.retry(userId, job.id);
    await eventually(() => saw('finished', job.id), 10_000, 'the retried job to finish');
    expect((await statusOf(job.id)).status).toBe('completed');
  });

  it('without a NOTIFY, the fallback poll finds the job', async () => {
    const service = new ValidationJobService(ds);
    const { saw } = await startWorker([service.jobs], { pollIntervalMs: 300 });
    const [silent] = await db.query<{ id: number }>(
      `INSERT INTO validation_jobs (crawl_job_id, name) VALUES ($1, 'silent') RETURNING id`,
      [crawlJobId],
    );
    await eventually(() => saw('finished', silent.id), 10_000, 'the polled job to finish');
  });

  it('a lost listening connection is reported and listened again, and NOTIFY works after it', async () => {
    const service = new ValidationJobService(ds);
    const lost: Error[] = [];
    let listening = 0;
    const { saw } = await startWorker([service.jobs], {
      pollIntervalMs: HOUR,
      events: { listenerLost: (error) => lost.push(error), listening: () => listening++ },
    });
    expect(listening).toBe(1);
    const [{ terminated }] = await db.query<{ terminated: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS terminated FROM pg_stat_activity
        WHERE datname = current_database() AND query = 'LISTEN pixcrawler_jobs'`,
    );
    expect(terminated).toBe(1);
    await eventually(() => lost.length === 1 && listening === 2, 10_000, 'listening again');
    const job = await service.request(userId, { crawlJobId, name: 'after the loss', rules: {} });
    await eventually(() => saw('finished', job.id), 10_000, 'the job to finish');
  });

  it('the heartbeat keeps a job that writes no progress alive past the lease', async () => {
    const repository = new ValidationJobRepository(ds);
    // One long step with no progress write, three times the lease.
    const silentWork = async (job: ValidationJob, _run: JobRun<ValidationProgress>) => {
      await sleep(3_000);
      return repository.complete(job.id, { validatedImages: 0, invalidImages: 0 });
    };
    const runner = new JobRunner('validation', repository, silentWork);
    const { saw } = await startWorker([runner], { leaseSeconds: 1, recoveryIntervalMs: 200 });
    const job = await repository.insert({ crawlJobId, name: 'quiet', rules: {} });
    await repository.notifyPending();
    await eventually(() => saw('finished', job.id), 15_000, 'the quiet job to finish');
    expect((await statusOf(job.id)).status).toBe('completed');
  });

  it('stop() lets a running job finish within the grace period, and claims nothing more', async () => {
    const repository = new ValidationJobRepository(ds);
    const work = async (job: ValidationJob) => {
      await sleep(1_000);
      return repository.complete(job.id, { validatedImages: 0, invalidImages: 0 });
    };
    const { worker, saw } = await startWorker([new JobRunner('validation', repository, work)], {
      gracePeriodMs: 10_000,
    });
    const running = await repository.insert({ crawlJobId, name: 'finishes', rules: {} });
    await repository.notifyPending();
    await eventually(() => saw('started', running.id), 10_000, 'the job to start');
    const stopped = worker.stop('test');
    const later = await repository.insert({ crawlJobId, name: 'left pending', rules: {} });
    await repository.notifyPending();
    await stopped;
    expect((await statusOf(running.id)).status).toBe('completed');
    expect((await statusOf(later.id)).status).toBe('pending');
  });

  it('stop() fails a job still running after the grace period with a message saying why', async () => {
    const service = new ValidationJobService(ds, { batchSize: 1 });
    const { worker, saw } = await startWorker([service.jobs], { gracePeriodMs: 200 });
    const job = await service.request(userId, {
      crawlJobId: bigCrawlJobId,
      name: 'long',
      rules: {},
    });
    await eventually(() => saw('started', job.id), 10_000, 'the job to start');
    await worker.stop('SIGTERM');
    expect(saw('abandoned', job.id)).toBe(true);
    const row = await statusOf(job.id);
    expect(row.status).toBe('failed');
    expect(row.error_message).toMatch(/^worker stopped \(SIGTERM\) before the job finished/);
    // The run noticed and stopped writing: its progress no longer moves.
    const [before] = await db.query<{ validated_images: number }>(
      `SELECT validated_images FROM validation_jobs WHERE id = $1`,
      [job.id],
    );
    await sleep(500);
    const [after] = await db.query<{ validated_images: number }>(
      `SELECT validated_images FROM validation_jobs WHERE id = $1`,
      [job.id],
    );
    expect(after.validated_images).toBe(before.validated_images);
  });

  it('rejects settings it cannot work with, naming each', () => {
    const service = new ValidationJobService(ds);
    expect(() => new JobWorker(ds, [service.jobs], { concurrency: 0, leaseSeconds: 1.5 })).toThrow(
      /concurrency must be a whole number from 1 to 1000, got 0.*leaseSeconds must be a whole number from 1 to 2147483647, got 1.5/,
    );
    // A Node timer longer than 2^31 - 1 ms fires at once: that would be busy polling.
    expect(() => new JobWorker(ds, [service.jobs], { pollIntervalMs: 3_000_000_000 })).toThrow(
      /pollIntervalMs must be a number from 1 to 2147483647, got 3000000000/,
    );
    expect(() => new JobWorker(ds, [])).toThrow(/give at least one kind of job to run/);
  });

  describe('as `pixcrawler-db work` processes', () => {
    it('refuses a bad flag value with exit code 2, naming the flag, before connecting', async () => {
      const { code, output } = await runCli(['work', '--concurrency', '0'], db.url);
      expect(code).toBe(2);
      expect(output).toContain('--concurrency must be a whole number from 1 to 1000, got "0"');
      const lease = await runCli(['work', '--lease', 'soon'], db.url);
      expect(lease.code).toBe(2);
      expect(lease.output).toContain(
        '--lease must be a whole number from 1 to 2147483647, got "soon"',
      );
    });

    it('two worker processes never run one job twice', async () => {
      const service = new ValidationJobService(ds);
      const args = ['work', '--validation', '--concurrency', '3', '--poll', '1'];
      const a = spawnCli(args, db.url);
      const b = spawnCli(args, db.url);
      processes.push(a, b);
      await waitForOutput(a, /^Working on validation jobs/m);
      await waitForOutput(b, /^Working on validation jobs/m);
      const requested: number[] = [];
      for (let i = 0; i < 60; i++) {
        requested.push(
          (await service.request(userId, { crawlJobId, name: `job ${i}`, rules: {} })).id,
        );
      }
      await eventually(
        async () =>
          (
            await db.query<{ done: number }>(
              `SELECT count(*)::int AS done FROM validation_jobs WHERE id = ANY($1) AND status = 'completed'`,
              [requested],
            )
          )[0].done === requested.length,
        60_000,
        `every job to complete; worker outputs:\n${a.output()}\n---\n${b.output()}`,
      );
      const startedBy = (run: CliRun) =>
        [...run.output().matchAll(/^started validation job (\d+)$/gm)].map((m) => Number(m[1]));
      const started = [...startedBy(a), ...startedBy(b)];
      expect(started.length).toBe(new Set(started).size);
      expect([...started].sort((x, y) => x - y)).toEqual([...requested].sort((x, y) => x - y));
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      expect((await a.exited).code).toBe(0);
      expect((await b.exited).code).toBe(0);
    });

    it('SIGTERM during a run stops it cleanly: the job is failed saying why, the process exits 0', async () => {
      const service = new ValidationJobService(ds);
      const run = spawnCli(['work', '--validation', '--batch-size', '1', '--grace', '1'], db.url);
      processes.push(run);
      await waitForOutput(run, /^Working on/m);
      const job = await service.request(userId, {
        crawlJobId: bigCrawlJobId,
        name: 'long',
        rules: {},
      });
      await waitForOutput(run, new RegExp(`^started validation job ${job.id}$`, 'm'));
      run.child.kill('SIGTERM');
      const { code } = await run.exited;
      expect(code).toBe(0);
      expect(run.output()).toMatch(
        /Stopping \(SIGTERM\): no new jobs; waiting up to 1 s for 1 running job/,
      );
      expect(run.output()).toContain('Stopped.');
      expect(run.output()).not.toMatch(/^\s+at /m);
      // A graceful stop is the worker's normal end, not an interruption.
      expect(run.output()).not.toContain('Interrupted');
      const row = await statusOf(job.id);
      expect(row.status).toBe('failed');
      expect(row.error_message).toMatch(/^worker stopped \(SIGTERM\) before the job finished/);
      const [{ running }] = await db.query<{ running: number }>(
        `SELECT count(*)::int AS running FROM validation_jobs WHERE status = 'running'`,
      );
      expect(running).toBe(0);
    });

    it("a killed worker's job is recovered after the lease", async () => {
      const service = new ValidationJobService(ds);
      const run = spawnCli(['work', '--validation', '--batch-size', '1', '--lease', '2'], db.url);
      processes.push(run);
      await waitForOutput(run, /^Working on/m);
      const job = await service.request(userId, {
        crawlJobId: bigCrawlJobId,
        name: 'orphan',
        rules: {},
      });
      await waitForOutput(run, new RegExp(`^started validation job ${job.id}$`, 'm'));
      run.child.kill('SIGKILL');
      await run.exited;
      expect((await statusOf(job.id)).status).toBe('running');

      const { saw } = await startWorker([service.jobs], { leaseSeconds: 2, pollIntervalMs: HOUR });
      await eventually(() => saw('recovered', job.id), 15_000, 'the orphaned job to be recovered');
      const row = await statusOf(job.id);
      expect(row.status).toBe('failed');
      expect(row.error_message).toMatch(/^worker lost: no heartbeat for more than 2 seconds/);
    });
  });
});
