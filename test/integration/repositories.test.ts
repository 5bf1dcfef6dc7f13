import type { DataSource } from 'typeorm';
import { ActivityLogRepository } from '../../src/repositories/activity-log.repository';
import { CrawlJobRepository } from '../../src/repositories/crawl-job.repository';
import { ExportJobRepository } from '../../src/repositories/export-job.repository';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ProjectRepository } from '../../src/repositories/project.repository';
import { ValidationJobRepository } from '../../src/repositories/validation-job.repository';
import {
  generateImages,
  makeCrawlJob,
  makeOwnedCrawlJob,
  makeProfile,
  makeProject,
} from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('repository queries', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('repositories');
    await db.migrate();
    ds = await db.connect();
  });
  afterAll(() => db.drop());

  it("lists a user's projects newest first, paginated, without deleted or other users' projects", async () => {
    const repo = new ProjectRepository(ds);
    const user = await makeProfile(ds);
    const other = await makeProfile(ds);
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await makeProject(ds, user.id, `p${i}`));
    await makeProject(ds, other.id, 'foreign');
    await repo.transition(user.id, made[2].id, 'delete');
    const expected = made
      .filter((_, i) => i !== 2)
      .reverse()
      .map((p) => p.id);
    const first = await repo.listByUser(user.id, { limit: 2, offset: 0 });
    const rest = await repo.listByUser(user.id, { limit: 10, offset: 2 });
    expect([...first, ...rest].map((p) => p.id)).toEqual(expected);
  });

  it("lists a project's crawl jobs newest first, optionally of one status", async () => {
    const repo = new CrawlJobRepository(ds);
    const user = await makeProfile(ds);
    const project = await makeProject(ds, user.id);
    const elsewhere = await makeProject(ds, user.id);
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await makeCrawlJob(ds, project.id, `c${i}`));
    await makeCrawlJob(ds, elsewhere.id);
    await repo.transition(jobs[1].id, 'start');
    await repo.transition(jobs[3].id, 'start');
    const all = await repo.listByProject(project.id, { limit: 10, offset: 0 });
    expect(all.map((j) => j.id)).toEqual(jobs.map((j) => j.id).reverse());
    const running = await repo.listByProject(project.id, {
      status: 'running',
      limit: 10,
      offset: 0,
    });
    expect(running.map((j) => j.id)).toEqual([jobs[3].id, jobs[1].id]);
  });

  it('lists crawl jobs of one status oldest first, keyset on id', async () => {
    const repo = new CrawlJobRepository(ds);
    const { crawlJob: a } = await makeOwnedCrawlJob(ds);
    const { crawlJob: b } = await makeOwnedCrawlJob(ds);
    await repo.transition(a.id, 'start');
    await repo.transition(a.id, 'fail');
    await repo.transition(b.id, 'start');
    await repo.transition(b.id, 'fail');
    const failed = await repo.listByStatus('failed', { limit: 100 });
    expect(failed.map((j) => j.id)).toEqual([a.id, b.id]);
    expect(
      (await repo.listByStatus('failed', { limit: 100, afterId: a.id })).map((j) => j.id),
    ).toEqual([b.id]);
  });

  it("lists a user's exports newest first and a crawl job's validations and exports newest first", async () => {
    const exportsRepo = new ExportJobRepository(ds);
    const validations = new ValidationJobRepository(ds);
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    const { user: other, crawlJob: otherJob } = await makeOwnedCrawlJob(ds);
    const mine = [];
    for (const format of ['zip', 'csv', 'tar'] as const) {
      mine.push(
        await exportsRepo.insert({
          crawlJobId: crawlJob.id,
          userId: user.id,
          name: format,
          format,
          options: {},
        }),
      );
    }
    await exportsRepo.insert({
      crawlJobId: otherJob.id,
      userId: other.id,
      name: 'x',
      format: 'zip',
      options: {},
    });
    const page1 = await exportsRepo.listByUser(user.id, { limit: 2 });
    const page2 = await exportsRepo.listByUser(user.id, { limit: 2, beforeId: page1[1].id });
    expect([...page1, ...page2].map((e) => e.id)).toEqual(mine.map((e) => e.id).reverse());
    expect((await exportsRepo.listByCrawlJob(crawlJob.id)).map((e) => e.id)).toEqual(
      mine.map((e) => e.id).reverse(),
    );

    const v1 = await validations.insert({ crawlJobId: crawlJob.id, name: 'v1', rules: {} });
    const v2 = await validations.insert({
      crawlJobId: crawlJob.id,
      name: 'v2',
      rules: { minWidth: 1 },
    });
    await validations.insert({ crawlJobId: otherJob.id, name: 'other', rules: {} });
    const listed = await validations.listByCrawlJob(crawlJob.id);
    expect(listed.map((v) => v.id)).toEqual([v2.id, v1.id]);
    expect(listed[0].validationRules).toEqual({ minWidth: 1 });
  });

  it('pages recent activity with a keyset cursor, globally and per user, newest first', async () => {
    const repo = new ActivityLogRepository(ds);
    await ds.query('DELETE FROM activity_logs');
    const a = await makeProfile(ds);
    const b = await makeProfile(ds);
    // Several rows per transaction share one timestamp: the id breaks the tie.
    await ds.transaction(async (m) => {
      for (let i = 0; i < 5; i++) {
        await repo.record(
          {
            userId: i % 2 ? b.id : a.id,
            action: 'project.created',
            resourceType: 'project',
            resourceId: i,
          },
          m,
        );
      }
    });
    for (let i = 5; i < 9; i++) {
      await repo.record({
        userId: i % 2 ? b.id : a.id,
        action: 'project.created',
        resourceType: 'project',
        resourceId: i,
      });
    }
    const collect = async (userId: string | null) => {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = userId
          ? await repo.recentByUser(userId, { limit: 2, cursor })
          : await repo.recent({ limit: 2, cursor });
        seen.push(...page.items.map((item) => item.resourceId as string));
        if (!page.nextCursor) return seen;
        cursor = page.nextCursor;
      }
    };
    expect(await collect(null)).toEqual(['8', '7', '6', '5', '4', '3', '2', '1', '0']);
    expect(await collect(a.id)).toEqual(['8', '6', '4', '2', '0']);
    expect(await collect(b.id)).toEqual(['7', '5', '3', '1']);
    await expect(repo.recent({ limit: 2, cursor: 'not-a-cursor' })).rejects.toMatchObject({
      fields: { cursor: ['cursor must be the nextCursor of a previous page'] },
    });
  });

  it("lists and streams a crawl job's images in id order, only its own", async () => {
    const images = new ImageRepository(ds);
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const { crawlJob: other } = await makeOwnedCrawlJob(ds);
    await images.ingest(crawlJob.id, generateImages(30, 'a'));
    await images.ingest(other.id, generateImages(10, 'b'));
    await images.ingest(crawlJob.id, generateImages(15, 'c'));
    const streamed: number[] = [];
    for await (const batch of images.stream(crawlJob.id, { batchSize: 7 })) {
      expect(batch.length).toBeLessThanOrEqual(7);
      streamed.push(...batch.map((i) => i.id));
    }
    expect(streamed).toHaveLength(45);
    expect(streamed).toEqual([...streamed].sort((x, y) => x - y));
    const paged = [
      ...(await images.listByCrawlJob(crawlJob.id, { limit: 20 })),
      ...(await images.listByCrawlJob(crawlJob.id, { limit: 100, afterId: streamed[19] })),
    ];
    expect(paged.map((i) => i.id)).toEqual(streamed);
    expect(await images.countByCrawlJob(crawlJob.id)).toBe(45);
  });
});
