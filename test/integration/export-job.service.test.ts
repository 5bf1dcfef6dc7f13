import { parse as parseCsv } from 'csv-parse/sync';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import * as unzipper from 'unzipper';
import { ConflictError } from '../../src/errors';
import { ImageRepository } from '../../src/repositories/image.repository';
import {
  ARCHIVE_MANIFEST,
  ExportJobService,
  MANIFEST_COLUMNS,
  type ManifestRow,
} from '../../src/services/export-job.service';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { tarEntries } from '../helpers/archives';

const NUMERIC = new Set(['id', 'crawl_job_id', 'width', 'height', 'file_size']);

async function readZip(file: string): Promise<Map<string, Buffer>> {
  const directory = await unzipper.Open.file(file);
  const entries = new Map<string, Buffer>();
  for (const entry of directory.files) entries.set(entry.path, await entry.buffer());
  return entries;
}

const parseJsonl = (text: string): ManifestRow[] =>
  text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as ManifestRow);

describe('ExportJobService', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let storageDir: string;
  let outputDir: string;
  let service: ExportJobService;

  /** The crawl job's image rows straight from the table, in the manifest's shape. */
  const imageRows = (crawlJobId: number) =>
    db.query<ManifestRow>(
      `SELECT ${MANIFEST_COLUMNS.join(', ')} FROM images WHERE crawl_job_id = $1 ORDER BY id`,
      [crawlJobId],
    );

  /** A crawl job with images whose files exist under the storage root. */
  async function crawlJobWithFiles(count: number) {
    const owned = await makeOwnedCrawlJob(ds);
    const images = generateImages(count, `job-${owned.crawlJob.id}`);
    await mkdir(path.join(storageDir, `job-${owned.crawlJob.id}`), { recursive: true });
    await Promise.all(
      images.map((image, i) =>
        writeFile(path.join(storageDir, image.storageUrl!), `bytes of image ${i}`),
      ),
    );
    await new ImageRepository(ds).ingest(owned.crawlJob.id, images);
    return owned;
  }

  beforeAll(async () => {
    db = await createTestDatabase('exports');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-export-test-'));
    storageDir = path.join(root, 'storage');
    outputDir = path.join(root, 'out');
    service = new ExportJobService(ds, {
      outputDir,
      storage: new LocalDirectoryStorage(storageDir),
      batchSize: 250,
    });
  });
  afterAll(async () => {
    await db.drop();
    await rm(root, { recursive: true, force: true });
  });

  it('a csv export parses back to exactly the crawl job’s image rows', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(1200);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'csv',
      format: 'csv',
    });
    const done = await service.run(job.id);
    expect(done).toMatchObject({
      status: 'completed',
      progress: 100,
      totalImages: 1200,
      exportedImages: 1200,
    });
    const text = await readFile(service.filePath(done), 'utf8');
    expect(done.fileSize).toBe(Buffer.byteLength(text));
    const parsed = parseCsv(text, {
      columns: true,
      cast: (value, context) => {
        if (value === '') return null;
        return NUMERIC.has(String(context.column)) ? Number(value) : value;
      },
    }) as ManifestRow[];
    expect(parsed).toEqual(await imageRows(crawlJob.id));
  });

  it('a jsonl export parses back to exactly the crawl job’s image rows, and sets download_url and expires_at', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(700);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'jsonl',
      format: 'jsonl',
      options: { expiresInHours: 2 },
    });
    const before = Date.now();
    const done = await service.run(job.id);
    expect(done.status).toBe('completed');
    expect(done.downloadUrl).toBe(`file://${service.filePath(done)}`);
    expect(done.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 2 * 3_600_000 - 1000);
    const rows = parseJsonl(await readFile(service.filePath(done), 'utf8'));
    expect(rows).toEqual(await imageRows(crawlJob.id));
  });

  it.each(['zip', 'tar'] as const)(
    'a %s export holds a manifest that parses back to the image rows, and every image file',
    async (format) => {
      const { user, crawlJob } = await crawlJobWithFiles(300);
      const job = await service.request(user.id, { crawlJobId: crawlJob.id, name: format, format });
      const progress: number[] = [];
      const done = await service.run(job.id, (p) => {
        progress.push(p.progress);
      });
      expect(done).toMatchObject({ status: 'completed', exportedImages: 300 });
      expect(progress.at(-1)).toBe(100);
      const file = service.filePath(done);
      const entries = format === 'zip' ? await readZip(file) : new Map(await tarEntries(file));
      const rows = await imageRows(crawlJob.id);
      expect(parseJsonl(entries.get(ARCHIVE_MANIFEST)!.toString('utf8'))).toEqual(rows);
      expect(entries.size).toBe(rows.length + 1);
      for (const row of rows) {
        const bytes = entries.get(`images/${row.id}-${row.filename}`);
        expect(bytes?.toString()).toBe(
          await readFile(path.join(storageDir, String(row.storage_url)), 'utf8'),
        );
      }
    },
  );

  it('a zip export of an image whose file is missing fails, naming the image, and leaves no file', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(20);
    const [victim] = await imageRows(crawlJob.id);
    await rm(path.join(storageDir, String(victim.storage_url)));
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'broken',
      format: 'zip',
    });
    const done = await service.run(job.id);
    expect(done.status).toBe('failed');
    expect(done.errorMessage).toContain(`image ${victim.id}: file not found`);
    expect(done.downloadUrl).toBeNull();
    const leftovers = (await readdir(outputDir)).filter((name) =>
      name.startsWith(`export-${job.id}.`),
    );
    expect(leftovers).toEqual([]);
  });

  it('an onlyValid export holds exactly the images that pass the latest completed validation', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(900);
    const rules = { minWidth: 400, allowedFormats: ['jpeg', 'png'] };
    const validations = new ValidationJobService(ds);
    const validation = await validations.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'v',
      rules,
    });
    await validations.run(validation.id);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'valid only',
      format: 'jsonl',
      options: { onlyValid: true },
    });
    const done = await service.run(job.id);
    const expected = (await imageRows(crawlJob.id)).filter(
      (row) =>
        row.width !== null &&
        Number(row.width) >= 400 &&
        row.format !== null &&
        ['jpeg', 'png'].includes(String(row.format)),
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(parseJsonl(await readFile(service.filePath(done), 'utf8'))).toEqual(expected);
    expect(done.exportedImages).toBe(expected.length);
  });

  it('an onlyValid export of a crawl job never validated fails with a clear message', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(5);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'nothing validated',
      format: 'csv',
      options: { onlyValid: true },
    });
    const done = await service.run(job.id);
    expect(done.status).toBe('failed');
    expect(done.errorMessage).toMatch(/needs a completed validation job/);
  });

  it('download records export.downloaded; purging an expired export deletes its file and clears download_url, keeping its status', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(10);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'old',
      format: 'csv',
    });
    const done = await service.run(job.id);
    const download = await service.download(user.id, job.id);
    expect(download.filePath).toBe(service.filePath(done));
    const logs = await db.query(
      `SELECT 1 FROM activity_logs WHERE action = 'export.downloaded' AND resource_id = $1 AND user_id = $2`,
      [String(job.id), user.id],
    );
    expect(logs).toHaveLength(1);

    await db.query(
      `UPDATE export_jobs SET expires_at = now() - interval '1 minute' WHERE id = $1`,
      [job.id],
    );
    expect(await service.purgeExpired()).toEqual([job.id]);
    expect(existsSync(service.filePath(done))).toBe(false);
    const purged = await service.get(user.id, job.id);
    expect(purged).toMatchObject({ status: 'completed', downloadUrl: null, fileSize: null });
    await expect(service.download(user.id, job.id)).rejects.toBeInstanceOf(ConflictError);
    expect(await service.purgeExpired()).toEqual([]);
  });

  it('downloading an export that is not completed is a conflict naming its status', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(1);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'p',
      format: 'csv',
    });
    await expect(service.download(user.id, job.id)).rejects.toThrow(/is pending, not completed/);
  });

  it('an export cancelled while it runs stops, keeps no file and stays cancelled', async () => {
    const { user, crawlJob } = await crawlJobWithFiles(1000);
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'c',
      format: 'jsonl',
    });
    const done = await service.run(job.id, async (p) => {
      if (p.exportedImages === 250) await service.cancel(user.id, job.id);
    });
    expect(done).toMatchObject({ status: 'cancelled', exportedImages: 250 });
    expect((await readdir(outputDir)).filter((n) => n.startsWith(`export-${job.id}.`))).toEqual([]);
  });

  it('download_url uses the configured base URL when there is one', async () => {
    const withBase = new ExportJobService(ds, {
      outputDir,
      storage: new LocalDirectoryStorage(storageDir),
      downloadBaseUrl: 'https://downloads.example.com/exports',
    });
    const { user, crawlJob } = await crawlJobWithFiles(3);
    const job = await withBase.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'b',
      format: 'csv',
    });
    const done = await withBase.run(job.id);
    expect(done.downloadUrl).toBe(`https://downloads.example.com/exports/export-${job.id}.csv`);
  });
});
