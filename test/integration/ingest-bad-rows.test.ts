import type { DataSource } from 'typeorm';
import { IllegalTransitionError, NotFoundError, ValidationError } from '../../src/errors';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * ingestImages refuses a whole batch for one bad row: a bad row
 * deep in a batch, or among the rows trimmed at max_images, still refuses the whole batch,
 * stores nothing, leaves the counters alone and the connection usable.
 */
describe('ingestImages bad rows anywhere in a batch', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let crawlJobs: CrawlJobService;

  beforeAll(async () => {
    db = await createTestDatabase('ingest_bad_rows');
    await db.migrate();
    ds = await db.connect();
    crawlJobs = new CrawlJobService(ds);
  });
  afterAll(() => db.drop());

  async function job(status: string, maxImages = 100_000) {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    await ds.query('UPDATE crawl_jobs SET status = $2, max_images = $3 WHERE id = $1', [
      crawlJob.id,
      status,
      maxImages,
    ]);
    return crawlJob.id;
  }

  const state = async (id: number) =>
    (
      await db.query<{ images: number; total: number }>(
        `SELECT (SELECT count(*)::int FROM images WHERE crawl_job_id = $1) AS images,
                total_images AS total FROM crawl_jobs WHERE id = $1`,
        [id],
      )
    )[0];

  async function refusal(call: Promise<unknown>): Promise<unknown> {
    return call.then(
      () => new Error('the call succeeded'),
      (e: unknown) => e,
    );
  }

  it('a bad row after thousands already sent: nothing stored, every bad row named', async () => {
    const id = await job('running');
    await crawlJobs.ingestImages(id, generateImages(10, 'first'));
    const rows: unknown[] = generateImages(5000, 'deep');
    rows[3500] = { ...(rows[3500] as object), originalUrl: 'ftp://example.com/x' };
    rows[4999] = null;
    const error = await refusal(crawlJobs.ingestImages(id, rows));
    expect(error).toBeInstanceOf(ValidationError);
    expect(Object.keys((error as ValidationError).fields).sort()).toEqual([
      'images[3500].originalUrl',
      'images[4999]',
    ]);
    expect(await state(id)).toEqual({ images: 10, total: 10 });
    // The connection and the job are still fine for the next batch.
    await expect(crawlJobs.ingestImages(id, generateImages(3, 'next'))).resolves.toMatchObject({
      inserted: 3,
      totalImages: 13,
    });
  });

  it('a bad row among the rows trimmed at max_images refuses the batch', async () => {
    const id = await job('running', 1500);
    const rows: unknown[] = generateImages(3000, 'trim');
    rows[2500] = { ...(rows[2500] as object), filename: '../escape.jpg' };
    const error = await refusal(crawlJobs.ingestImages(id, rows));
    expect(error).toBeInstanceOf(ValidationError);
    expect(Object.keys((error as ValidationError).fields)).toEqual(['images[2500].filename']);
    expect(await state(id)).toEqual({ images: 0, total: 0 });
  });

  it('a bad row when the job is full: ValidationError, not a silent trim', async () => {
    const id = await job('running', 2);
    await crawlJobs.ingestImages(id, generateImages(2, 'full'));
    const rows: unknown[] = generateImages(3, 'over');
    rows[1] = 42;
    expect(await refusal(crawlJobs.ingestImages(id, rows))).toBeInstanceOf(ValidationError);
    expect(await state(id)).toEqual({ images: 2, total: 2 });
  });

  it('bad rows win over a job that is not running or missing, as if checked first', async () => {
    const pending = await job('pending');
    const bad: unknown[] = [...generateImages(2, 'p'), 'not an image'];
    expect(await refusal(crawlJobs.ingestImages(pending, bad))).toBeInstanceOf(ValidationError);
    expect(await refusal(crawlJobs.ingestImages(2_000_000_000, bad))).toBeInstanceOf(
      ValidationError,
    );
    // Good rows: the job's own error.
    const good = generateImages(2, 'g');
    expect(await refusal(crawlJobs.ingestImages(pending, good))).toBeInstanceOf(
      IllegalTransitionError,
    );
    expect(await refusal(crawlJobs.ingestImages(2_000_000_000, good))).toBeInstanceOf(
      NotFoundError,
    );
    expect(await state(pending)).toEqual({ images: 0, total: 0 });
  });
});
