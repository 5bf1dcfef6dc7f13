import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { NotFoundError } from '../../src/errors';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ActivityService } from '../../src/services/activity.service';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { ExportJobService } from '../../src/services/export-job.service';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import { ProjectService } from '../../src/services/project.service';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { generateImages, makeProfile } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const MISSING = 1_999_999_999;

describe('ownership: another user’s ids behave exactly like missing ones', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let owner: string;
  let stranger: string;
  const ids = { project: 0, crawlJob: 0, validationJob: 0, exportJob: 0 };
  let projects: ProjectService;
  let crawlJobs: CrawlJobService;
  let validations: ValidationJobService;
  let exportsService: ExportJobService;

  /** Everything a refused call must leave untouched. */
  const snapshot = () =>
    db.query(`
      SELECT (SELECT count(*) FROM activity_logs) AS logs,
             (SELECT count(*) FROM crawl_jobs) AS crawl_jobs,
             (SELECT count(*) FROM validation_jobs) AS validation_jobs,
             (SELECT count(*) FROM export_jobs) AS export_jobs,
             (SELECT string_agg(status, ',' ORDER BY id) FROM projects) AS project_statuses,
             (SELECT string_agg(status, ',' ORDER BY id) FROM crawl_jobs) AS crawl_statuses,
             (SELECT string_agg(status, ',' ORDER BY id) FROM validation_jobs) AS validation_statuses,
             (SELECT string_agg(status, ',' ORDER BY id) FROM export_jobs) AS export_statuses`);

  beforeAll(async () => {
    db = await createTestDatabase('ownership');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-ownership-'));
    projects = new ProjectService(ds);
    crawlJobs = new CrawlJobService(ds);
    validations = new ValidationJobService(ds);
    exportsService = new ExportJobService(ds, {
      outputDir: root,
      storage: new LocalDirectoryStorage(root),
    });
    owner = (await makeProfile(ds, 'owner')).id;
    stranger = (await makeProfile(ds, 'stranger')).id;
    ids.project = (await projects.create(owner, { name: 'mine' })).id;
    ids.crawlJob = (
      await crawlJobs.create(owner, { projectId: ids.project, name: 'c', keywords: ['k'] })
    ).id;
    await new ImageRepository(ds).ingest(ids.crawlJob, generateImages(20));
    ids.validationJob = (
      await validations.request(owner, { crawlJobId: ids.crawlJob, name: 'v', rules: {} })
    ).id;
    ids.exportJob = (
      await exportsService.request(owner, { crawlJobId: ids.crawlJob, name: 'e', format: 'csv' })
    ).id;
    await exportsService.run(ids.exportJob);
  });
  afterAll(async () => {
    await db.drop();
    await rm(root, { recursive: true, force: true });
  });

  type Call = (userId: string, id: number) => Promise<unknown>;
  const calls: [string, string, keyof typeof ids, Call][] = [
    ['ProjectService.get', 'project', 'project', (u, id) => projects.get(u, id)],
    ['ProjectService.archive', 'project', 'project', (u, id) => projects.archive(u, id)],
    ['ProjectService.delete', 'project', 'project', (u, id) => projects.delete(u, id)],
    [
      'CrawlJobService.create',
      'project',
      'project',
      (u, id) => crawlJobs.create(u, { projectId: id, name: 'x', keywords: ['k'] }),
    ],
    [
      'CrawlJobService.listForProject',
      'project',
      'project',
      (u, id) => crawlJobs.listForProject(u, id),
    ],
    ['CrawlJobService.get', 'crawl job', 'crawlJob', (u, id) => crawlJobs.get(u, id)],
    ['CrawlJobService.start', 'crawl job', 'crawlJob', (u, id) => crawlJobs.start(u, id)],
    ['CrawlJobService.cancel', 'crawl job', 'crawlJob', (u, id) => crawlJobs.cancel(u, id)],
    ['CrawlJobService.retry', 'crawl job', 'crawlJob', (u, id) => crawlJobs.retry(u, id)],
    [
      'ValidationJobService.request',
      'crawl job',
      'crawlJob',
      (u, id) => validations.request(u, { crawlJobId: id, name: 'x', rules: {} }),
    ],
    [
      'ValidationJobService.listForCrawlJob',
      'crawl job',
      'crawlJob',
      (u, id) => validations.listForCrawlJob(u, id),
    ],
    [
      'ValidationJobService.get',
      'validation job',
      'validationJob',
      (u, id) => validations.get(u, id),
    ],
    [
      'ValidationJobService.cancel',
      'validation job',
      'validationJob',
      (u, id) => validations.cancel(u, id),
    ],
    [
      'ValidationJobService.retry',
      'validation job',
      'validationJob',
      (u, id) => validations.retry(u, id),
    ],
    [
      'ExportJobService.request',
      'crawl job',
      'crawlJob',
      (u, id) => exportsService.request(u, { crawlJobId: id, name: 'x', format: 'zip' }),
    ],
    [
      'ExportJobService.listForCrawlJob',
      'crawl job',
      'crawlJob',
      (u, id) => exportsService.listForCrawlJob(u, id),
    ],
    ['ExportJobService.get', 'export job', 'exportJob', (u, id) => exportsService.get(u, id)],
    ['ExportJobService.cancel', 'export job', 'exportJob', (u, id) => exportsService.cancel(u, id)],
    ['ExportJobService.retry', 'export job', 'exportJob', (u, id) => exportsService.retry(u, id)],
    [
      'ExportJobService.download',
      'export job',
      'exportJob',
      (u, id) => exportsService.download(u, id),
    ],
  ];

  it.each(calls)(
    '%s with another user’s id throws the NotFoundError a missing id throws, and writes nothing',
    async (_name, resource, key, call) => {
      const before = await snapshot();
      const foreign = await call(stranger, ids[key]).catch((e: unknown) => e);
      const missing = await call(owner, MISSING).catch((e: unknown) => e);
      expect(foreign).toEqual(new NotFoundError(resource, ids[key]));
      expect(missing).toEqual(new NotFoundError(resource, MISSING));
      expect(Object.getPrototypeOf(foreign)).toBe(Object.getPrototypeOf(missing));
      expect(Object.keys(foreign as object).sort()).toEqual(Object.keys(missing as object).sort());
      expect(await snapshot()).toEqual(before);
    },
  );

  it('list calls show a stranger none of the owner’s rows', async () => {
    expect(await projects.list(stranger)).toEqual([]);
    expect(await exportsService.listMine(stranger)).toEqual([]);
    expect((await new ActivityService(ds).recentForUser(stranger)).items).toEqual([]);
    expect((await projects.list(owner)).map((p) => p.id)).toEqual([ids.project]);
    expect((await exportsService.listMine(owner)).map((e) => e.id)).toEqual([ids.exportJob]);
  });

  it('the owner can do what the stranger could not (the refusals were about ownership)', async () => {
    await expect(projects.get(owner, ids.project)).resolves.toMatchObject({ id: ids.project });
    await expect(crawlJobs.get(owner, ids.crawlJob)).resolves.toMatchObject({ id: ids.crawlJob });
    await expect(validations.get(owner, ids.validationJob)).resolves.toMatchObject({
      id: ids.validationJob,
    });
    await expect(exportsService.download(owner, ids.exportJob)).resolves.toMatchObject({
      filePath: exportsService.filePath({ id: ids.exportJob, format: 'csv' }),
    });
    await expect(crawlJobs.start(owner, ids.crawlJob)).resolves.toMatchObject({
      status: 'running',
    });
  });

  it('a deleted project and its crawl jobs are gone for their owner too', async () => {
    const project = await projects.create(owner, { name: 'to delete' });
    const job = await crawlJobs.create(owner, {
      projectId: project.id,
      name: 'c',
      keywords: ['k'],
    });
    await projects.delete(owner, project.id);
    await expect(projects.get(owner, project.id)).rejects.toEqual(
      new NotFoundError('project', project.id),
    );
    await expect(crawlJobs.get(owner, job.id)).rejects.toEqual(
      new NotFoundError('crawl job', job.id),
    );
  });
});
