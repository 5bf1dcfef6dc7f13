import type { DataSource } from 'typeorm';
import { ActivityLogRepository } from '../../src/repositories/activity-log.repository';
import { CrawlJobRepository } from '../../src/repositories/crawl-job.repository';
import { ExportJobRepository } from '../../src/repositories/export-job.repository';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ProjectRepository } from '../../src/repositories/project.repository';
import { ValidationJobRepository } from '../../src/repositories/validation-job.repository';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { capturingDataSource, indexesInPlan, type CapturedQuery } from '../helpers/query-capture';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('image ingest and the hot queries’ plans', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let capture: Awaited<ReturnType<typeof capturingDataSource>>;
  let bigJobId: number;
  let smallJobId: number;
  let sampleUserId: string;
  let sampleProjectId: number;

  beforeAll(async () => {
    db = await createTestDatabase('plans');
    await db.migrate();
    ds = await db.connect();
    capture = await capturingDataSource(db.url);
  });
  afterAll(async () => {
    await capture.dataSource.destroy();
    await db.drop();
  });

  it('ingests 100,000 images in one call and the crawl job counters match the rows', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    bigJobId = crawlJob.id;
    const images = generateImages(100_000, 'big');
    const result = await new ImageRepository(ds).ingest(crawlJob.id, images);
    expect(result).toEqual({ inserted: 100_000, totalImages: 100_000, downloadedImages: 100_000 });
    const [row] = await db.query<{ rows: number; total_images: number; downloaded_images: number }>(
      `SELECT (SELECT count(*)::int FROM images WHERE crawl_job_id = $1) AS rows, total_images, downloaded_images
         FROM crawl_jobs WHERE id = $1`,
      [crawlJob.id],
    );
    expect(row).toEqual({ rows: 100_000, total_images: 100_000, downloaded_images: 100_000 });
    // Spot-check a row round-trips column by column, NULLs included.
    const [stored] = await db.query(
      `SELECT original_url, filename, storage_url, width, height, file_size, format FROM images
        WHERE crawl_job_id = $1 ORDER BY id OFFSET 34 LIMIT 1`,
      [crawlJob.id],
    );
    const expected = images[34];
    expect(stored).toEqual({
      original_url: expected.originalUrl,
      filename: expected.filename,
      storage_url: expected.storageUrl,
      width: expected.width,
      height: expected.height,
      file_size: expected.fileSize,
      format: expected.format,
    });
  });

  it('an ingest that breaks a check constraint writes no image and leaves the counters alone', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const images = generateImages(10);
    images[7].width = -1;
    await expect(new ImageRepository(ds).ingest(crawlJob.id, images)).rejects.toThrow(
      /ck_images_width/,
    );
    const [row] = await db.query<{ n: number; total_images: number }>(
      `SELECT (SELECT count(*)::int FROM images WHERE crawl_job_id = $1) AS n, total_images FROM crawl_jobs WHERE id = $1`,
      [crawlJob.id],
    );
    expect(row).toEqual({ n: 0, total_images: 0 });
  });

  describe('on tables large enough for the planner to prefer indexes', () => {
    beforeAll(async () => {
      // Many owners, projects and jobs, so that each hot query's rows are a small fraction.
      await db.query(`
        INSERT INTO profiles (id, email)
        SELECT gen_random_uuid(), 'bulk' || i || '@example.com' FROM generate_series(1, 2000) i;
        INSERT INTO projects (user_id, name, created_at)
        SELECT p.id, 'bulk project', now() - (random() * interval '300 days')
          FROM profiles p, generate_series(1, 10);
        INSERT INTO crawl_jobs (project_id, name, keywords, status)
        SELECT id, 'bulk crawl', '["x"]', CASE WHEN id % 200 = 0 THEN 'failed' ELSE 'completed' END
          FROM projects;
        INSERT INTO validation_jobs (crawl_job_id, name, status)
        SELECT id, 'bulk validation', CASE WHEN id % 2000 = 0 THEN 'pending' ELSE 'completed' END FROM crawl_jobs;
        INSERT INTO export_jobs (crawl_job_id, user_id, name, status)
        SELECT cj.id, p.user_id, 'bulk export', CASE WHEN cj.id % 2000 = 0 THEN 'pending' ELSE 'completed' END
          FROM crawl_jobs cj JOIN projects p ON p.id = cj.project_id;
        INSERT INTO activity_logs (user_id, action, resource_type, resource_id, "timestamp")
        SELECT u.ids[1 + i % 2000], 'project.created', 'project', i::text, now() - (i * interval '1 minute')
          FROM (SELECT array_agg(id ORDER BY id) AS ids FROM profiles) u, generate_series(1, 100000) i;`);
      // More images through the ingest path: 100 further jobs of 1,000 images each.
      const images = new ImageRepository(ds);
      const jobs = await db.query<{ id: number }>(
        `SELECT id FROM crawl_jobs WHERE id <> $1 ORDER BY id LIMIT 100`,
        [bigJobId],
      );
      for (const job of jobs) await images.ingest(job.id, generateImages(1000, `j${job.id}`));
      smallJobId = jobs[50].id;
      const [sample] = await db.query<{ user_id: string; id: number }>(
        `SELECT user_id, id FROM projects ORDER BY id OFFSET 500 LIMIT 1`,
      );
      sampleUserId = sample.user_id;
      sampleProjectId = sample.id;
      await db.query('ANALYZE');
    });

    async function planIndexes(query: CapturedQuery): Promise<string[]> {
      const [row] = await db.query<{ 'QUERY PLAN': unknown }>(
        `EXPLAIN (FORMAT JSON) ${query.sql}`,
        query.params,
      );
      return indexesInPlan(row['QUERY PLAN']);
    }

    const cases: [string, string, () => Promise<CapturedQuery>][] = [
      [
        "a user's projects",
        'ix_project_user_id',
        () =>
          capture.lastQuery(() =>
            new ProjectRepository(capture.dataSource).listByUser(sampleUserId, {
              limit: 20,
              offset: 0,
            }),
          ),
      ],
      [
        "a project's crawl jobs",
        'ix_crawl_job_project_status',
        () =>
          capture.lastQuery(() =>
            new CrawlJobRepository(capture.dataSource).listByProject(sampleProjectId, {
              limit: 20,
              offset: 0,
            }),
          ),
      ],
      [
        "a project's crawl jobs of one status",
        'ix_crawl_job_project_status',
        () =>
          capture.lastQuery(() =>
            new CrawlJobRepository(capture.dataSource).listByProject(sampleProjectId, {
              status: 'completed',
              limit: 20,
              offset: 0,
            }),
          ),
      ],
      [
        'crawl jobs by status',
        'ix_crawl_job_status',
        () =>
          capture.lastQuery(() =>
            new CrawlJobRepository(capture.dataSource).listByStatus('failed', { limit: 50 }),
          ),
      ],
      [
        "a crawl job's images, streamed",
        'ix_image_crawl_job_id',
        async () => new ImageRepository(ds).streamSql(smallJobId),
      ],
      [
        "a crawl job's images, streamed through validation rules",
        'ix_image_crawl_job_id',
        async () =>
          new ImageRepository(ds).streamSql(smallJobId, { minWidth: 300, allowedFormats: ['png'] }),
      ],
      [
        "a validation batch over a crawl job's images",
        'ix_image_crawl_job_id',
        () =>
          capture.lastQuery(() =>
            new ImageRepository(capture.dataSource).validityBatch(
              smallJobId,
              { minWidth: 10 },
              { afterId: 0, limit: 5000 },
            ),
          ),
      ],
      [
        "counting a crawl job's images",
        'ix_image_crawl_job_id',
        () =>
          capture.lastQuery(() =>
            new ImageRepository(capture.dataSource).countByCrawlJob(smallJobId),
          ),
      ],
      [
        'recent activity',
        'ix_activity_log_timestamp',
        () =>
          capture.lastQuery(() =>
            new ActivityLogRepository(capture.dataSource).recent({ limit: 20 }),
          ),
      ],
      [
        "a user's recent activity",
        'ix_activity_log_user_id',
        () =>
          capture.lastQuery(() =>
            new ActivityLogRepository(capture.dataSource).recentByUser(sampleUserId, { limit: 20 }),
          ),
      ],
      [
        'claiming a validation job',
        'ix_validation_job_pending',
        async () => {
          const runner = capture.dataSource.createQueryRunner();
          await runner.startTransaction();
          try {
            return await capture.lastQuery(() =>
              new ValidationJobRepository(capture.dataSource).claimNext(runner.manager),
            );
          } finally {
            await runner.rollbackTransaction();
            await runner.release();
          }
        },
      ],
      [
        'claiming an export job',
        'ix_export_job_pending',
        async () => {
          const runner = capture.dataSource.createQueryRunner();
          await runner.startTransaction();
          try {
            return await capture.lastQuery(() =>
              new ExportJobRepository(capture.dataSource).claimNext(runner.manager),
            );
          } finally {
            await runner.rollbackTransaction();
            await runner.release();
          }
        },
      ],
      [
        "a crawl job's validations",
        'ix_validation_job_crawl_job_id',
        () =>
          capture.lastQuery(() =>
            new ValidationJobRepository(capture.dataSource).listByCrawlJob(smallJobId),
          ),
      ],
      [
        "a user's exports",
        'ix_export_job_user_id',
        () =>
          capture.lastQuery(() =>
            new ExportJobRepository(capture.dataSource).listByUser(sampleUserId, { limit: 20 }),
          ),
      ],
      [
        "a crawl job's exports",
        'ix_export_job_crawl_job_id',
        () =>
          capture.lastQuery(() =>
            new ExportJobRepository(capture.dataSource).listByCrawlJob(smallJobId),
          ),
      ],
    ];

    it.each(cases)('the plan of %s uses %s', async (_name, index, query) => {
      expect(await planIndexes(await query())).toContain(index);
    });
  });
});
