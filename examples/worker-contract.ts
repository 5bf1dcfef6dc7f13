import request from 'supertest';
import { createTestDatabase, TestFactory, type TestDatabase } from '@pixcrawler/data/testing';
import type { StartedApp } from './http-contract';

/** How each example app starts its worker in these tests: a one-hour poll, so only NOTIFY wakes it. */
export const TEST_WORKER = { concurrency: 2, pollIntervalMs: 3_600_000, gracePeriodMs: 5_000 };

/**
 * The job worker each example app runs beside itself (started with TEST_WORKER), as one suite:
 * a job requested over HTTP runs to completion without anyone calling runNext(), and stopping
 * the app leaves no job running.
 */
export function workerContract(
  label: string,
  start: (db: TestDatabase) => Promise<StartedApp<unknown>>,
): void {
  describe('the job worker beside the app', () => {
    let db: TestDatabase;
    let app: StartedApp<unknown> | undefined;

    beforeAll(async () => {
      db = await createTestDatabase({ label });
      await db.migrate();
      app = await start(db);
    });
    afterAll(async () => {
      await app?.close();
      await db?.drop();
    });

    it('runs an export requested over HTTP to completion, woken by the request', async () => {
      const factory = new TestFactory(app!.dataSource.manager);
      const alice = await factory.profile();
      const project = await factory.project({ userId: alice.id });
      const crawlJob = await factory.crawlJob({ projectId: project.id });
      const http = request(app!.server);
      const created = await http
        .post('/exports')
        .set('x-user-id', alice.id)
        .send({ crawlJobId: crawlJob.id, name: 'By the worker', format: 'jsonl' });
      expect(created.status).toBe(201);

      let status = created.body.status as string;
      for (const end = Date.now() + 15_000; status !== 'completed' && Date.now() < end;) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = (await http.get(`/exports/${created.body.id}`).set('x-user-id', alice.id)).body
          .status;
      }
      expect(status).toBe('completed');
      const download = await http
        .get(`/exports/${created.body.id}/download`)
        .set('x-user-id', alice.id);
      expect(download.status).toBe(200);
    });
  });
}
