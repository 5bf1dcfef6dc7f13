import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { withDatabase } from '../../src/connection/database-url';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { spawnCli, type CliRun } from '../helpers/cli';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * A lost connection costs one job at most, never the worker: `work` whose backends are
 * terminated (pg_terminate_backend, several times, while jobs run), or whose database refuses
 * every connection for a few seconds, goes on, reconnects and drains the queue; nothing is left
 * running.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a busy worker whose connections are terminated', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let run: CliRun | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('worker_terminated');
    await db.migrate();
    ds = await db.connect();
  });
  afterAll(async () => {
    if (run && run.child.exitCode === null) {
      run.child.kill('SIGKILL');
      await run.exited;
    }
    await db.drop();
  });

  it('goes on, fails or finishes every job, and stops cleanly', async () => {
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    await new ImageRepository(ds).ingest(crawlJob.id, generateImages(20_000, 'big'));
    const service = new ValidationJobService(ds);
    const jobs = 24;
    for (let i = 0; i < jobs; i++) {
      await service.request(user.id, { crawlJobId: crawlJob.id, name: `v${i}`, rules: {} });
    }
    run = spawnCli(
      ['work', '--validation', '--concurrency', '2', '--batch-size', '500', '--poll', '1'],
      db.url,
    );
    const worker = run;
    const counts = async () => {
      const rows = await db.query<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM validation_jobs GROUP BY status`,
      );
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    };
    // Terminate the worker's backends three times while it works.
    for (let kill = 0; kill < 3; kill++) {
      for (let i = 0; i < 400 && !((await counts()).running > 0); i++) await sleep(50);
      await db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND backend_type = 'client backend'`,
      );
      await sleep(300);
      expect({ kill, alive: worker.child.exitCode === null }).toEqual({ kill, alive: true });
    }
    // It drains the queue: every job ends completed or failed, none pending or running.
    let now = await counts();
    for (let i = 0; i < 1200 && ((now.pending ?? 0) > 0 || (now.running ?? 0) > 0); i++) {
      await sleep(100);
      now = await counts();
    }
    expect(now.pending ?? 0).toBe(0);
    expect(now.running ?? 0).toBe(0);
    expect((now.completed ?? 0) + (now.failed ?? 0)).toBe(jobs);
    expect(now.completed ?? 0).toBeGreaterThan(0);
    worker.child.kill('SIGTERM');
    const { code } = await worker.exited;
    expect(code).toBe(0);
  }, 180_000);

  it('goes on when the database refuses every connection for a few seconds, and drains the queue', async () => {
    const { user, crawlJob } = await makeOwnedCrawlJob(ds, 'refused');
    await new ImageRepository(ds).ingest(crawlJob.id, generateImages(20_000, 'refused'));
    const service = new ValidationJobService(ds);
    const jobs = 12;
    for (let i = 0; i < jobs; i++) {
      await service.request(user.id, { crawlJobId: crawlJob.id, name: `r${i}`, rules: {} });
    }
    run = spawnCli(
      ['work', '--validation', '--concurrency', '2', '--batch-size', '500', '--poll', '1'],
      db.url,
    );
    const worker = run;
    const counts = async () => {
      const rows = await db.query<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM validation_jobs WHERE name LIKE 'r%' GROUP BY status`,
      );
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    };
    for (let i = 0; i < 400 && !((await counts()).running > 0); i++) await sleep(50);
    // From another database: no new connection is let in, and the ones open are ended.
    const admin = new Client({ connectionString: withDatabase(db.url, 'postgres') });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS false`);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`,
        [db.name],
      );
      await sleep(3_000);
      expect(worker.child.exitCode).toBeNull();
    } finally {
      await admin.query(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    let now = await counts();
    for (let i = 0; i < 1200 && ((now.pending ?? 0) > 0 || (now.running ?? 0) > 0); i++) {
      await sleep(100);
      now = await counts();
    }
    expect(now.pending ?? 0).toBe(0);
    expect(now.running ?? 0).toBe(0);
    expect((now.completed ?? 0) + (now.failed ?? 0)).toBe(jobs);
    expect(now.completed ?? 0).toBeGreaterThan(0);
    worker.child.kill('SIGTERM');
    const { code } = await worker.exited;
    expect(code).toBe(0);
  }, 180_000);
});
