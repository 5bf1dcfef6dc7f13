import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { ConflictError, IllegalTransitionError, ValidationError } from '../../src/errors';
import { ActivityService } from '../../src/services/activity.service';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { ExportJobService } from '../../src/services/export-job.service';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import { ProfileService } from '../../src/services/profile.service';
import { ProjectService } from '../../src/services/project.service';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { generateImages, makeProfile } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('the workflow services', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let profiles: ProfileService;
  let projects: ProjectService;
  let crawlJobs: CrawlJobService;
  let validations: ValidationJobService;
  let exportsService: ExportJobService;

  const counts = () =>
    db.query(`SELECT (SELECT count(*) FROM profiles) AS profiles, (SELECT count(*) FROM projects) AS projects,
                     (SELECT count(*) FROM crawl_jobs) AS crawl_jobs, (SELECT count(*) FROM images) AS images,
                     (SELECT count(*) FROM validation_jobs) AS validation_jobs,
                     (SELECT count(*) FROM export_jobs) AS export_jobs,
                     (SELECT count(*) FROM activity_logs) AS activity_logs`);

  beforeAll(async () => {
    db = await createTestDatabase('services');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-services-'));
    profiles = new ProfileService(ds);
    projects = new ProjectService(ds);
    crawlJobs = new CrawlJobService(ds);
    validations = new ValidationJobService(ds);
    exportsService = new ExportJobService(ds, {
      outputDir: root,
      storage: new LocalDirectoryStorage(root),
    });
  });
  afterAll(async () => {
    await db.drop();
    await rm(root, { recursive: true, force: true });
  });

  it('writes one activity row per user action, each with the acting user and the resource', async () => {
    const user = (await makeProfile(ds)).id;
    const project = await projects.create(user, { name: 'birds' });
    const job = await crawlJobs.create(user, {
      projectId: project.id,
      name: 'crawl',
      keywords: ['robin'],
    });
    await crawlJobs.start(user, job.id);
    await crawlJobs.ingestImages(job.id, generateImages(5));
    await crawlJobs.complete(job.id);
    const validation = await validations.request(user, {
      crawlJobId: job.id,
      name: 'v',
      rules: {},
    });
    const exportJob = await exportsService.request(user, {
      crawlJobId: job.id,
      name: 'e',
      format: 'jsonl',
    });
    await exportsService.run(exportJob.id);
    await exportsService.download(user, exportJob.id);
    await projects.archive(user, project.id);
    await projects.delete(user, project.id);
    const { items } = await new ActivityService(ds).recentForUser(user, { limit: 100 });
    expect(items.map((log) => [log.action, log.resourceType, log.resourceId]).reverse()).toEqual([
      ['project.created', 'project', String(project.id)],
      ['crawl_job.created', 'crawl_job', String(job.id)],
      ['crawl_job.started', 'crawl_job', String(job.id)],
      ['crawl_job.completed', 'crawl_job', String(job.id)],
      ['validation.requested', 'validation_job', String(validation.id)],
      ['export.requested', 'export_job', String(exportJob.id)],
      ['export.downloaded', 'export_job', String(exportJob.id)],
      ['project.archived', 'project', String(project.id)],
      ['project.deleted', 'project', String(project.id)],
    ]);
  });

  it('a refused change writes no activity row (the row is in the change’s transaction)', async () => {
    const user = (await makeProfile(ds)).id;
    const project = await projects.create(user, { name: 'p' });
    await projects.archive(user, project.id);
    const before = await counts();
    await expect(projects.archive(user, project.id)).rejects.toMatchObject({
      currentStatus: 'archived',
    });
    await expect(
      crawlJobs.create(user, { projectId: project.id, name: 'c', keywords: ['k'] }),
    ).rejects.toBeInstanceOf(IllegalTransitionError);
    expect(await counts()).toEqual(before);
  });

  it.each([
    [
      'ProfileService.create',
      'email',
      () => profiles.create({ id: randomUUID(), email: 'not-an-email' }),
    ],
    ['ProjectService.create', 'name', (u: string) => projects.create(u, { name: '' })],
    ['ProjectService.list', 'limit', (u: string) => projects.list(u, { limit: 0 })],
    [
      'CrawlJobService.create',
      'keywords',
      (u: string, ids: Ids) =>
        crawlJobs.create(u, { projectId: ids.project, name: 'c', keywords: [] }),
    ],
    [
      'CrawlJobService.listForProject',
      'status',
      (u: string, ids: Ids) => crawlJobs.listForProject(u, ids.project, { status: 'done' }),
    ],
    [
      'CrawlJobService.recordChunkProgress',
      'completedChunks',
      (_u: string, ids: Ids) =>
        crawlJobs.recordChunkProgress(ids.crawlJob, { completedChunks: -1 }),
    ],
    [
      'ValidationJobService.request',
      'rules.maxFileSize',
      (u: string, ids: Ids) =>
        validations.request(u, { crawlJobId: ids.crawlJob, name: 'v', rules: { maxFileSize: -1 } }),
    ],
    [
      'ValidationJobService.request',
      'rules.allowedFormats',
      (u: string, ids: Ids) =>
        validations.request(u, {
          crawlJobId: ids.crawlJob,
          name: 'v',
          rules: { allowedFormats: 'png' },
        }),
    ],
    [
      'ExportJobService.request',
      'format',
      (u: string, ids: Ids) =>
        exportsService.request(u, { crawlJobId: ids.crawlJob, name: 'e', format: 'rar' }),
    ],
    [
      'ExportJobService.request',
      'options.expiresInHours',
      (u: string, ids: Ids) =>
        exportsService.request(u, {
          crawlJobId: ids.crawlJob,
          name: 'e',
          format: 'csv',
          options: { expiresInHours: -1 },
        }),
    ],
    [
      'ActivityService.recentForUser',
      'limit',
      (u: string) => new ActivityService(ds).recentForUser(u, { limit: 'ten' }),
    ],
    [
      'ProjectService.create with a user id that is not a uuid',
      'userId',
      () => projects.create('me', { name: 'p' }),
    ],
  ] as [string, string, (u: string, ids: Ids) => Promise<unknown>][])(
    '%s rejects bad input naming %s and writes nothing',
    async (_name, field, call) => {
      const user = (await makeProfile(ds)).id;
      const project = await projects.create(user, { name: 'p' });
      const job = await crawlJobs.create(user, {
        projectId: project.id,
        name: 'c',
        keywords: ['k'],
      });
      await crawlJobs.start(user, job.id);
      const before = await counts();
      const error = await call(user, { project: project.id, crawlJob: job.id }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(Object.keys((error as ValidationError).fields)).toContain(field);
      expect(await counts()).toEqual(before);
    },
  );

  it('a taken email is a ConflictError on the email field', async () => {
    const email = `dup-${randomUUID()}@example.com`;
    await profiles.create({ id: randomUUID(), email });
    const error = await profiles.create({ id: randomUUID(), email }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ field: 'email' });
  });

  it('concurrent chunk reports add up (atomic increments, no lost update)', async () => {
    const user = (await makeProfile(ds)).id;
    const project = await projects.create(user, { name: 'p' });
    const job = await crawlJobs.create(user, { projectId: project.id, name: 'c', keywords: ['k'] });
    await crawlJobs.start(user, job.id);
    const others = await Promise.all([db.connect(), db.connect(), db.connect()]);
    const services = [crawlJobs, ...others.map((other) => new CrawlJobService(other))];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        services[i % services.length].recordChunkProgress(job.id, {
          startedChunks: 3,
          completedChunks: 2,
          failedChunks: 1,
        }),
      ),
    );
    const done = await crawlJobs.get(user, job.id);
    expect(done).toMatchObject({
      totalChunks: 120,
      activeChunks: 0,
      completedChunks: 80,
      failedChunks: 40,
    });
  });

  it('a chunk report that would make active_chunks negative is a ValidationError on activeChunks', async () => {
    const user = (await makeProfile(ds)).id;
    const project = await projects.create(user, { name: 'p' });
    const job = await crawlJobs.create(user, { projectId: project.id, name: 'c', keywords: ['k'] });
    await crawlJobs.start(user, job.id);
    const error = await crawlJobs
      .recordChunkProgress(job.id, { completedChunks: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(Object.keys((error as ValidationError).fields)).toEqual(['activeChunks']);
  });

  it('chunk reports on a job that is not running are refused naming its status', async () => {
    const user = (await makeProfile(ds)).id;
    const project = await projects.create(user, { name: 'p' });
    const job = await crawlJobs.create(user, { projectId: project.id, name: 'c', keywords: ['k'] });
    await expect(crawlJobs.recordChunkProgress(job.id, { startedChunks: 1 })).rejects.toMatchObject(
      {
        currentStatus: 'pending',
      },
    );
  });

  it('lists a project’s crawl jobs by status through the service', async () => {
    const user = (await makeProfile(ds)).id;
    const project = await projects.create(user, { name: 'p' });
    const a = await crawlJobs.create(user, { projectId: project.id, name: 'a', keywords: ['k'] });
    const b = await crawlJobs.create(user, { projectId: project.id, name: 'b', keywords: ['k'] });
    await crawlJobs.start(user, b.id);
    expect((await crawlJobs.listForProject(user, project.id)).map((j) => j.id)).toEqual([
      b.id,
      a.id,
    ]);
    expect(
      (await crawlJobs.listForProject(user, project.id, { status: 'pending' })).map((j) => j.id),
    ).toEqual([a.id]);
  });
});

interface Ids {
  project: number;
  crawlJob: number;
}
