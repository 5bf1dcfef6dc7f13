import type { DataSource } from 'typeorm';
import { NotFoundError } from '../../src/errors';
import { ImageRepository, type NewImage } from '../../src/repositories/image.repository';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** ImageRepository.ingest writes with COPY FROM STDIN: its text encoding must round-trip. */
describe('image ingest through COPY', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('ingest_copy');
    await db.migrate();
    ds = await db.connect();
  });
  afterAll(() => db.drop());

  const stored = (crawlJobId: number) =>
    db.query<Record<string, unknown>>(
      `SELECT original_url AS "originalUrl", filename, storage_url AS "storageUrl", width, height,
              file_size AS "fileSize", format
         FROM images WHERE crawl_job_id = $1 ORDER BY id`,
      [crawlJobId],
    );

  it('stores every value exactly: backslashes, tabs, newlines, CR, \\N, unicode, NULLs', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const odd = [
      'back\\slash',
      'tab\there',
      'new\nline',
      'cr\rhere',
      '\\N',
      '\\.',
      '猫🐱',
      'a\\tb',
      '',
    ];
    const images: NewImage[] = odd.map((value, i) => ({
      originalUrl: `https://example.com/${value}`,
      filename: `${value}.jpg`,
      storageUrl: i % 2 ? value : null,
      width: i % 3 ? 10 * i : null,
      height: i,
      fileSize: i % 4 ? null : 1000 + i,
      format: i % 2 ? value.slice(0, 10) : undefined,
    }));
    const result = await new ImageRepository(ds).ingest(crawlJob.id, images);
    expect(result).toEqual({
      inserted: odd.length,
      totalImages: odd.length,
      downloadedImages: odd.length,
    });
    expect(await stored(crawlJob.id)).toEqual(
      images.map((image) => ({
        ...image,
        storageUrl: image.storageUrl ?? null,
        width: image.width ?? null,
        fileSize: image.fileSize ?? null,
        format: image.format ?? null,
      })),
    );
  });

  it('adds to the counters call after call, and an empty call changes nothing but is fine', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const repo = new ImageRepository(ds);
    const image = (n: number): NewImage => ({
      originalUrl: `https://e.com/${n}`,
      filename: `${n}.jpg`,
    });
    await repo.ingest(crawlJob.id, [image(1), image(2)]);
    expect(await repo.ingest(crawlJob.id, [])).toEqual({
      inserted: 0,
      totalImages: 2,
      downloadedImages: 2,
    });
    expect(await repo.ingest(crawlJob.id, [image(3)])).toMatchObject({ totalImages: 3 });
  });

  it.each(['{ manager }', 'an EntityManager (the released form)'])(
    'joins the caller’s transaction given %s: rolled back, neither images nor counters remain',
    async (form) => {
      const { crawlJob } = await makeOwnedCrawlJob(ds);
      await expect(
        ds.transaction(async (manager) => {
          await new ImageRepository(ds).ingest(
            crawlJob.id,
            [{ originalUrl: 'https://e.com/1', filename: '1.jpg' }],
            form === '{ manager }' ? { manager } : manager,
          );
          // Inside the transaction, the row is there.
          const [inside] = await manager.query(
            'SELECT count(*)::int AS n FROM images WHERE crawl_job_id = $1',
            [crawlJob.id],
          );
          expect(inside).toEqual({ n: 1 });
          throw new Error('caller changes its mind');
        }),
      ).rejects.toThrow('caller changes its mind');
      const [row] = await db.query<{ n: number; total_images: number }>(
        `SELECT (SELECT count(*)::int FROM images WHERE crawl_job_id = $1) AS n, total_images
         FROM crawl_jobs WHERE id = $1`,
        [crawlJob.id],
      );
      expect(row).toEqual({ n: 0, total_images: 0 });
    },
  );

  it('a missing crawl job is NotFoundError and writes nothing', async () => {
    await expect(
      new ImageRepository(ds).ingest(2_000_000_000, [
        { originalUrl: 'https://e.com/1', filename: '1.jpg' },
      ]),
    ).rejects.toBeInstanceOf(NotFoundError);
    const [row] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM images WHERE crawl_job_id = 2000000000`,
    );
    expect(row.n).toBe(0);
  });
});
