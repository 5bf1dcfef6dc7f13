import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { MAX_INPUT_DEPTH, MAX_INPUT_VALUES } from '../../src/dto';
import {
  ForbiddenError,
  IllegalTransitionError,
  NotFoundError,
  ValidationError,
} from '../../src/errors';
import { ActivityService } from '../../src/services/activity.service';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { ExportJobService } from '../../src/services/export-job.service';
import { ProfileService } from '../../src/services/profile.service';
import { ProjectService } from '../../src/services/project.service';
import { ConflictError } from '../../src/errors';
import { TestFactory } from '../../src/testing/factories';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const INT4_MAX = 2_147_483_647;

/** `{ a: { a: … } }`, `levels` objects deep (built in a loop). */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i += 1) value = { a: value };
  return value;
}

/** The rejection's fields, or a failure naming what came instead. */
async function refusedFields(call: Promise<unknown>): Promise<Record<string, string[]>> {
  const error = await call.then(
    () => new Error('the call succeeded'),
    (e: unknown) => e,
  );
  if (!(error instanceof ValidationError)) throw error;
  return error.fields;
}

describe('hostile input to the services', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let crawlJobs: CrawlJobService;
  let profiles: ProfileService;

  const imageCount = async (crawlJobId: number) =>
    Number(
      (
        await db.query<{ n: string }>('SELECT count(*) AS n FROM images WHERE crawl_job_id = $1', [
          crawlJobId,
        ])
      )[0].n,
    );

  beforeAll(async () => {
    db = await createTestDatabase('hostile-input');
    await db.migrate();
    ds = await db.connect();
    crawlJobs = new CrawlJobService(ds);
    profiles = new ProfileService(ds);
  });
  afterAll(() => db.drop());

  /** A running crawl job with the given max_images. */
  async function runningJob(maxImages = 1000) {
    const owned = await makeOwnedCrawlJob(ds);
    await ds.query('UPDATE crawl_jobs SET status = $2, max_images = $3 WHERE id = $1', [
      owned.crawlJob.id,
      'running',
      maxImages,
    ]);
    return owned;
  }

  describe('ingestImages', () => {
    const hostileRows: Array<[string, Record<string, unknown>, string]> = [
      ['a javascript: URL', { originalUrl: 'javascript:alert(1)' }, 'originalUrl'],
      ['a file: original URL', { originalUrl: 'file:///etc/passwd' }, 'originalUrl'],
      ['a filename with a slash', { filename: 'a/b.jpg' }, 'filename'],
      ['a filename with a backslash', { filename: 'a\\b.jpg' }, 'filename'],
      ['a filename with ..', { filename: '..' }, 'filename'],
      ['a filename too long', { filename: 'x'.repeat(256) }, 'filename'],
      ['a NUL byte in the filename', { filename: 'a\u0000.jpg' }, 'filename'],
      ['a storage key climbing out', { storageUrl: '../../etc/passwd' }, 'storageUrl'],
      ['an absolute storage path', { storageUrl: '/etc/passwd' }, 'storageUrl'],
      ['a width beyond int4', { width: INT4_MAX + 1 }, 'width'],
      ['a negative height', { height: -1 }, 'height'],
      ['a fractional file size', { fileSize: 1.5 }, 'fileSize'],
      ['a format too long', { format: 'x'.repeat(11) }, 'format'],
      ['an unknown field', { id: 7 }, 'id'],
    ];

    it.each(hostileRows)(
      'refuses %s naming the row and field, storing nothing',
      async (_l, bad, field) => {
        const { crawlJob } = await runningJob();
        const rows: unknown[] = generateImages(3);
        rows[1] = { ...(rows[1] as object), ...bad };
        const fields = await refusedFields(crawlJobs.ingestImages(crawlJob.id, rows));
        expect(Object.keys(fields)).toEqual([`images[1].${field}`]);
        expect(fields[`images[1].${field}`][0]).toMatch(new RegExp(`^${field} `));
        expect(await imageCount(crawlJob.id)).toBe(0);
      },
    );

    it('refuses a batch that is not an array, or rows that are not objects', async () => {
      const { crawlJob } = await runningJob();
      expect(await refusedFields(crawlJobs.ingestImages(crawlJob.id, { a: 1 }))).toHaveProperty(
        'images',
      );
      expect(await refusedFields(crawlJobs.ingestImages(crawlJob.id, [null]))).toHaveProperty([
        'images[0]',
      ]);
    });

    it.each(['pending', 'completed', 'failed', 'cancelled'])(
      'refuses a %s job with IllegalTransitionError, storing nothing',
      async (status) => {
        const { crawlJob } = await runningJob();
        await ds.query('UPDATE crawl_jobs SET status = $2 WHERE id = $1', [crawlJob.id, status]);
        await expect(crawlJobs.ingestImages(crawlJob.id, generateImages(2))).rejects.toBeInstanceOf(
          IllegalTransitionError,
        );
        expect(await imageCount(crawlJob.id)).toBe(0);
      },
    );

    it('keeps the first rows up to max_images and reports the rest as trimmed', async () => {
      const { crawlJob } = await runningJob(5);
      expect(await crawlJobs.ingestImages(crawlJob.id, generateImages(3, 'a'))).toMatchObject({
        inserted: 3,
        trimmed: 0,
        totalImages: 3,
      });
      expect(await crawlJobs.ingestImages(crawlJob.id, generateImages(4, 'b'))).toMatchObject({
        inserted: 2,
        trimmed: 2,
        totalImages: 5,
      });
      expect(await crawlJobs.ingestImages(crawlJob.id, generateImages(1, 'c'))).toMatchObject({
        inserted: 0,
        trimmed: 1,
      });
      const names = await db.query<{ filename: string }>(
        'SELECT filename FROM images WHERE crawl_job_id = $1 ORDER BY id',
        [crawlJob.id],
      );
      expect(names.map((r) => r.filename)).toEqual([
        'a-0.jpg',
        'a-1.jpg',
        'a-2.jpg',
        'b-0.jpg',
        'b-1.jpg',
      ]);
    });

    it('never passes max_images under concurrent batches', async () => {
      const { crawlJob } = await runningJob(50);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          crawlJobs.ingestImages(crawlJob.id, generateImages(10, `p${i}`)),
        ),
      );
      expect(results.reduce((sum, r) => sum + r.inserted, 0)).toBe(50);
      expect(results.reduce((sum, r) => sum + r.trimmed, 0)).toBe(30);
      expect(await imageCount(crawlJob.id)).toBe(50);
    });

    it('answers NotFoundError for a job that does not exist or cannot be an id', async () => {
      await expect(crawlJobs.ingestImages(INT4_MAX, [])).rejects.toBeInstanceOf(NotFoundError);
      await expect(crawlJobs.ingestImages(1e300, [])).rejects.toBeInstanceOf(NotFoundError);
    });
  });

  describe('values that used to reach PostgreSQL raw', () => {
    it('refuses NUL bytes in names, descriptions, keywords and full names', async () => {
      const { user, project } = await runningJob();
      const projects = new ProjectService(ds);
      expect(await refusedFields(projects.create(user.id, { name: 'a\u0000' }))).toHaveProperty(
        'name',
      );
      expect(
        await refusedFields(projects.create(user.id, { name: 'a', description: '\u0000' })),
      ).toHaveProperty('description');
      expect(
        await refusedFields(
          crawlJobs.create(user.id, { projectId: project.id, name: 'n', keywords: ['\u0000'] }),
        ),
      ).toHaveProperty('keywords');
      expect(
        await refusedFields(
          profiles.create({
            id: '6b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11',
            email: 'n@x.io',
            fullName: 'a\u0000',
          }),
        ),
      ).toHaveProperty('fullName');
    });

    it('refuses maxImages beyond int4 and an offset of 1e300', async () => {
      const { user, project } = await runningJob();
      expect(
        await refusedFields(
          crawlJobs.create(user.id, {
            projectId: project.id,
            name: 'n',
            keywords: ['k'],
            maxImages: INT4_MAX + 1,
          }),
        ),
      ).toHaveProperty('maxImages');
      expect(
        await refusedFields(new ProjectService(ds).list(user.id, { offset: 1e300 })),
      ).toHaveProperty('offset');
      expect(
        await refusedFields(crawlJobs.listForProject(user.id, project.id, { offset: 1e300 })),
      ).toHaveProperty('offset');
    });

    it.each([0, 1.5, INT4_MAX + 1, Number.MAX_SAFE_INTEGER, 1e300])(
      'refuses a lease of %p seconds for recoverStale',
      async (lease) => {
        expect(await refusedFields(crawlJobs.recoverStale(lease))).toHaveProperty('leaseSeconds');
      },
    );

    it('refuses a chunk report whose sum would pass int4, changing nothing', async () => {
      const { crawlJob } = await runningJob();
      await crawlJobs.recordChunkProgress(crawlJob.id, { startedChunks: INT4_MAX - 1 });
      const fields = await refusedFields(
        crawlJobs.recordChunkProgress(crawlJob.id, { startedChunks: 5 }),
      );
      expect(fields).toHaveProperty('startedChunks');
      const [row] = await db.query<{ total_chunks: number }>(
        'SELECT total_chunks FROM crawl_jobs WHERE id = $1',
        [crawlJob.id],
      );
      expect(row.total_chunks).toBe(INT4_MAX - 1);
    });

    it.each([
      ['garbage', 'not-a-cursor'],
      [
        'an id beyond int4',
        Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000000Z', 1e20])).toString('base64url'),
      ],
      [
        'a date PostgreSQL refuses',
        Buffer.from(JSON.stringify(['0000-01-01T00:00:00.000000Z', 1])).toString('base64url'),
      ],
      [
        '31 February',
        Buffer.from(JSON.stringify(['2026-02-31T00:00:00.000000Z', 1])).toString('base64url'),
      ],
      ['a date in another shape', Buffer.from(JSON.stringify(['1', 1])).toString('base64url')],
    ])('refuses an activity cursor holding %s', async (_l, cursor) => {
      const { user } = await runningJob();
      const activity = new ActivityService(ds);
      expect(await refusedFields(activity.recent({ cursor }))).toHaveProperty('cursor');
      expect(await refusedFields(activity.recentForUser(user.id, { cursor }))).toHaveProperty(
        'cursor',
      );
    });
  });

  describe('the shape of input', () => {
    let exportsDir: string;
    let exportJobs: ExportJobService;
    beforeAll(async () => {
      exportsDir = await mkdtemp(path.join(tmpdir(), 'pixcrawler-hostile-'));
      exportJobs = new ExportJobService(ds, { outputDir: exportsDir });
    });
    afterAll(() => rm(exportsDir, { recursive: true, force: true }));

    const rowCount = async () =>
      (
        await db.query<{ n: string }>(
          `SELECT (SELECT count(*) FROM profiles) + (SELECT count(*) FROM projects) +
                  (SELECT count(*) FROM crawl_jobs) + (SELECT count(*) FROM export_jobs) AS n`,
        )
      )[0].n;

    /** The four entry points the issue names, each given `value` where a DTO nests. */
    async function entryPoints(value: unknown) {
      const { user, project, crawlJob } = await runningJob();
      return [
        ['ProfileService.create', () => profiles.create(value)],
        [
          'ProjectService.create',
          () => new ProjectService(ds).create(user.id, { name: 'n', description: value }),
        ],
        [
          'CrawlJobService.create',
          () => crawlJobs.create(user.id, { projectId: project.id, name: 'n', keywords: [value] }),
        ],
        [
          'ExportJobService.request',
          () =>
            exportJobs.request(user.id, {
              crawlJobId: crawlJob.id,
              name: 'n',
              format: 'csv',
              options: value,
            }),
        ],
      ] as const;
    }

    it('refuses an object 5,000 levels deep at each entry point with a ValidationError, writing nothing', async () => {
      const deep = nested(5000);
      for (const [name, call] of await entryPoints(deep)) {
        const before = await rowCount();
        const fields = await refusedFields(call()).catch((error: unknown) => {
          throw new Error(`${name} threw ${String(error)}`);
        });
        const [field] = Object.keys(fields);
        expect([name, fields[field]]).toEqual([
          name,
          [`${field} is nested more than ${MAX_INPUT_DEPTH} levels deep`],
        ]);
        expect(field).toMatch(/…$/);
        expect(await rowCount()).toBe(before);
      }
    });

    it('refuses a giant payload, wide or long, with a ValidationError', async () => {
      const { user } = await runningJob();
      const projects = new ProjectService(ds);
      const wide = Object.fromEntries(
        Array.from({ length: MAX_INPUT_VALUES + 1 }, (_, i) => [`k${i}`, 'v']),
      );
      expect(await refusedFields(projects.create(user.id, wide))).toHaveProperty('input');
      const long = new Array<string>(MAX_INPUT_VALUES + 1).fill('k');
      expect(
        await refusedFields(crawlJobs.create(user.id, { projectId: 1, name: 'n', keywords: long })),
      ).toHaveProperty('keywords');
    });

    it('still takes ordinary input at the same four entry points', async () => {
      const { user, project, crawlJob } = await runningJob();
      expect(
        await profiles.create({ id: 'ab1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11', email: 'ok@x.io' }),
      ).toMatchObject({ email: 'ok@x.io' });
      expect(
        await new ProjectService(ds).create(user.id, { name: 'p', description: 'd' }),
      ).toMatchObject({ name: 'p', description: 'd' });
      const keywords = Array.from({ length: 100 }, (_, i) => `k${i}`);
      expect(
        await crawlJobs.create(user.id, { projectId: project.id, name: 'c', keywords }),
      ).toMatchObject({ keywords });
      expect(
        await exportJobs.request(user.id, {
          crawlJobId: crawlJob.id,
          name: 'e',
          format: 'csv',
          options: { onlyValid: false, expiresInHours: 2 },
        }),
      ).toMatchObject({ exportOptions: { onlyValid: false, expiresInHours: 2 } });
    });
  });

  describe('roles and emails', () => {
    it('signs up as a user whatever the input says, and refuses a role field', async () => {
      const id = '7b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11';
      expect(
        await refusedFields(profiles.create({ id, email: 'eve@x.io', role: 'admin' })),
      ).toHaveProperty('role');
      expect(await profiles.create({ id, email: 'Eve@X.io' })).toMatchObject({
        role: 'user',
        email: 'eve@x.io',
      });
    });

    it('treats emails differing only in case as the same address', async () => {
      await profiles.create({
        id: '8b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11',
        email: 'Same@Example.com',
      });
      await expect(
        profiles.create({ id: '9b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11', email: 'same@example.COM' }),
      ).rejects.toBeInstanceOf(ConflictError);
    });

    it('lets only an admin change a role', async () => {
      const factory = new TestFactory(ds.manager);
      const admin = await factory.profile({ role: 'admin' });
      const user = await factory.profile();
      const other = await factory.profile();
      await expect(profiles.setRole(user.id, other.id, 'admin')).rejects.toBeInstanceOf(
        ForbiddenError,
      );
      expect((await profiles.get(other.id)).role).toBe('user');
      expect(await profiles.setRole(admin.id, other.id, 'moderator')).toMatchObject({
        role: 'moderator',
      });
      await expect(profiles.setRole(admin.id, other.id, 'root')).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(
        profiles.setRole(admin.id, '00000000-0000-4000-8000-000000000000', 'user'),
      ).rejects.toBeInstanceOf(NotFoundError);
    });
  });
});
