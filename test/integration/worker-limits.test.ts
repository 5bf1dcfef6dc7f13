import { ConnectionBudgetError, connectionBudget } from '../../src/connection/connection-budget';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { JobWorker } from '../../src/services/jobs/worker';
import { runCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * Limits the server imposes are respected: a worker whose concurrency needs more connections
 * than max_connections (less the reserved ones) allows is refused before it opens them.
 */
describe("the server's connection limit", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('worker_limits');
    await db.migrate();
  });
  afterAll(() => db.drop());

  it('JobWorker refuses a concurrency the server cannot serve, and stops cleanly', async () => {
    const dataSource = await db.connect();
    const budget = await connectionBudget(dataSource);
    expect(budget.available).toBe(budget.maxConnections - budget.reserved);
    const worker = new JobWorker(dataSource, [new ValidationJobService(dataSource).jobs], {
      concurrency: 1000,
    });
    await expect(worker.start()).rejects.toBeInstanceOf(ConnectionBudgetError);
    await worker.done;
    // One the server can serve starts.
    const fits = new JobWorker(dataSource, [new ValidationJobService(dataSource).jobs], {
      concurrency: 2,
    });
    await fits.start();
    await fits.stop();
  });

  it('`work --concurrency 1000` exits 2 and says what fits', async () => {
    const run = await runCli(['work', '--concurrency', '1000'], db.url);
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/needs up to 2001 connections, but the server allows \d+/);
    expect(run.output).toMatch(/Use at most --concurrency \d+/);
    expect(run.output).not.toMatch(/^\s+at /m);
  });
});
