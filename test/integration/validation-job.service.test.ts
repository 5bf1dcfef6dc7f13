import type { DataSource } from 'typeorm';
import type { ValidationRules } from '../../src/entities/validation-job.entity';
import { ImageRepository, type NewImage } from '../../src/repositories/image.repository';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** The rules, applied in plain TypeScript: the independent count the SQL must agree with. */
function passes(image: NewImage, rules: ValidationRules): boolean {
  const defined = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;
  if (rules.minWidth !== undefined && !(defined(image.width) && image.width >= rules.minWidth))
    return false;
  if (rules.minHeight !== undefined && !(defined(image.height) && image.height >= rules.minHeight))
    return false;
  if (
    rules.maxFileSize !== undefined &&
    !(defined(image.fileSize) && image.fileSize <= rules.maxFileSize)
  )
    return false;
  if (
    rules.allowedFormats !== undefined &&
    !(
      defined(image.format) &&
      rules.allowedFormats.map((f) => f.toLowerCase()).includes(image.format.toLowerCase())
    )
  ) {
    return false;
  }
  return true;
}

describe('ValidationJobService', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('validation');
    await db.migrate();
    ds = await db.connect();
  });
  afterAll(() => db.drop());

  it.each<[string, ValidationRules]>([
    [
      'every rule',
      { minWidth: 300, minHeight: 200, maxFileSize: 300_000, allowedFormats: ['JPEG', 'png'] },
    ],
    ['only a format rule', { allowedFormats: ['webp'] }],
    ['no rules', {}],
  ])(
    'counts valid and invalid images exactly as an independent count does, with %s',
    async (_label, rules) => {
      const service = new ValidationJobService(ds, { batchSize: 333 });
      const { user, crawlJob } = await makeOwnedCrawlJob(ds);
      const { crawlJob: neighbour } = await makeOwnedCrawlJob(ds);
      const images = generateImages(5000, `v${crawlJob.id}`);
      const imageRepo = new ImageRepository(ds);
      await imageRepo.ingest(crawlJob.id, images.slice(0, 2500));
      await imageRepo.ingest(neighbour.id, generateImages(700, 'n'));
      await imageRepo.ingest(crawlJob.id, images.slice(2500));
      const expectedInvalid = images.filter((image) => !passes(image, rules)).length;

      const requested = await service.request(user.id, {
        crawlJobId: crawlJob.id,
        name: 'check',
        rules,
      });
      expect(requested.status).toBe('pending');
      const seen: number[] = [];
      const done = await service.run(requested.id, (p) => {
        seen.push(p.validatedImages);
      });

      expect(done).toMatchObject({
        status: 'completed',
        progress: 100,
        totalImages: 5000,
        validatedImages: 5000,
        invalidImages: expectedInvalid,
        errorMessage: null,
      });
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(seen.length).toBeGreaterThan(10); // 5000 / 333 batches, each a progress update
      const [row] = await db.query<{ valid_images: number }>(
        'SELECT valid_images FROM crawl_jobs WHERE id = $1',
        [crawlJob.id],
      );
      expect(row.valid_images).toBe(5000 - expectedInvalid);
    },
  );

  it('stores the allowed formats lower-case and only the rules that were given', async () => {
    const service = new ValidationJobService(ds);
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'formats',
      rules: { allowedFormats: ['JPEG', 'Png'] },
    });
    expect(job.validationRules).toEqual({ allowedFormats: ['jpeg', 'png'] });
  });

  it('runNext claims the oldest pending validation job and runs it; null when none is pending', async () => {
    await ds.query(`UPDATE validation_jobs SET status = 'completed' WHERE status = 'pending'`);
    const service = new ValidationJobService(ds);
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    await new ImageRepository(ds).ingest(crawlJob.id, generateImages(50));
    const first = await service.request(user.id, { crawlJobId: crawlJob.id, name: 'a', rules: {} });
    const second = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'b',
      rules: {},
    });
    expect((await service.runNext())?.id).toBe(first.id);
    expect((await service.runNext())?.id).toBe(second.id);
    expect(await service.runNext()).toBeNull();
  });

  it('a job cancelled while it runs stops after the batch in progress and stays cancelled', async () => {
    const service = new ValidationJobService(ds, { batchSize: 100 });
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    await new ImageRepository(ds).ingest(crawlJob.id, generateImages(1000));
    const job = await service.request(user.id, { crawlJobId: crawlJob.id, name: 'c', rules: {} });
    const result = await service.run(job.id, async (progress) => {
      if (progress.validatedImages === 200) await service.cancel(user.id, job.id);
    });
    expect(result).toMatchObject({ status: 'cancelled', validatedImages: 200 });
    const [row] = await db.query<{ valid_images: number }>(
      'SELECT valid_images FROM crawl_jobs WHERE id = $1',
      [crawlJob.id],
    );
    expect(row.valid_images).toBe(0);
  });

  it('a run that hits an error fails the job with the error in error_message', async () => {
    const service = new ValidationJobService(ds);
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    await new ImageRepository(ds).ingest(crawlJob.id, generateImages(10));
    const job = await service.request(user.id, { crawlJobId: crawlJob.id, name: 'e', rules: {} });
    // Rules written around the DTO: a minWidth that is not a number makes the SQL fail.
    await ds.query(
      `UPDATE validation_jobs SET validation_rules = '{"minWidth": "wide"}' WHERE id = $1`,
      [job.id],
    );
    const result = await service.run(job.id);
    expect(result.status).toBe('failed');
    expect(result.errorMessage).toMatch(/^validation failed: /);
  });
});
