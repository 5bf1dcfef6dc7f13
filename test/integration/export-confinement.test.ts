import { existsSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ExportJobService } from '../../src/services/export-job.service';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const SECRET = 'TOP-SECRET-BYTES-OUTSIDE-THE-ROOT';

describe('exports read only files inside the storage root, and leave no file when they fail', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let storageDir: string;
  let outputDir: string;
  let secretFile: string;
  let service: ExportJobService;

  /** A crawl job whose images have files, the second one's storage_url replaced. */
  async function crawlJobWithSecondImage(storageUrl: string) {
    const owned = await makeOwnedCrawlJob(ds);
    const images = generateImages(3, `job-${owned.crawlJob.id}`);
    await mkdir(path.join(storageDir, `job-${owned.crawlJob.id}`), { recursive: true });
    for (const image of images) {
      await writeFile(path.join(storageDir, image.storageUrl!), 'ok');
    }
    images[1] = { ...images[1], storageUrl };
    await new ImageRepository(ds).ingest(owned.crawlJob.id, images);
    const [, victim] = await db.query<{ id: number }>(
      'SELECT id FROM images WHERE crawl_job_id = $1 ORDER BY id',
      [owned.crawlJob.id],
    );
    return { ...owned, victimId: victim.id };
  }

  const leftovers = async (jobId: number) =>
    (await readdir(outputDir).catch(() => [] as string[])).filter((name) =>
      name.startsWith(`export-${jobId}.`),
    );

  beforeAll(async () => {
    db = await createTestDatabase('export-confinement');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-confinement-'));
    storageDir = path.join(root, 'storage');
    outputDir = path.join(root, 'out');
    secretFile = path.join(root, 'secret.txt');
    await mkdir(storageDir, { recursive: true });
    await writeFile(secretFile, SECRET);
    await symlink(secretFile, path.join(storageDir, 'link-out.bin'));
    service = new ExportJobService(ds, {
      outputDir,
      storage: new LocalDirectoryStorage(storageDir),
    });
  });
  afterAll(async () => {
    await db.drop();
    await rm(root, { recursive: true, force: true });
  });

  const escapes: Array<[string, () => string]> = [
    ['a file:// URL outside the root', () => `file://${secretFile}`],
    ['a key that is a symlink to a file outside the root', () => 'link-out.bin'],
    ['a key climbing out with ../', () => '../secret.txt'],
    ['a file:// URL that climbs out through the root', () => `file://${storageDir}/../secret.txt`],
  ];

  for (const format of ['zip', 'tar'] as const) {
    it.each(escapes)(
      `a ${format} export of %s fails naming the image, and writes no file`,
      async (_l, url) => {
        const { user, crawlJob, victimId } = await crawlJobWithSecondImage(url());
        const job = await service.request(user.id, { crawlJobId: crawlJob.id, name: 'x', format });
        const done = await service.run(job.id);
        expect(done.status).toBe('failed');
        expect(done.errorMessage).toContain(`image ${victimId}:`);
        expect(done.errorMessage).toMatch(
          /outside the storage root|not a file under the storage root/,
        );
        expect(await leftovers(job.id)).toEqual([]);
      },
    );
  }

  it.each(['zip', 'tar'] as const)(
    'a %s export of an image whose file is missing fails naming the image, with no file left',
    async (format) => {
      const { user, crawlJob, victimId } = await crawlJobWithSecondImage('nowhere/missing.bin');
      const job = await service.request(user.id, { crawlJobId: crawlJob.id, name: 'm', format });
      const done = await service.run(job.id);
      expect(done.status).toBe('failed');
      expect(done.errorMessage).toContain(`image ${victimId}: file not found`);
      expect(await leftovers(job.id)).toEqual([]);
    },
  );

  it('a symlink that stays inside the root is followed', async () => {
    const { user, crawlJob } = await crawlJobWithSecondImage('link-in.bin');
    await writeFile(path.join(storageDir, 'inside.bin'), 'inside');
    await symlink(path.join(storageDir, 'inside.bin'), path.join(storageDir, 'link-in.bin'));
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'in',
      format: 'zip',
    });
    expect((await service.run(job.id)).status).toBe('completed');
    expect(existsSync(service.filePath(job))).toBe(true);
  });

  /** Open file descriptors of this process that point into the output directory. */
  const openOutputFiles = async () => {
    const fds = await readdir('/proc/self/fd').catch(() => [] as string[]);
    const targets = await Promise.all(
      fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
    );
    return targets.filter((target) => target.startsWith(outputDir));
  };

  it('a failed tar export closes its output file', async () => {
    const { user, crawlJob } = await crawlJobWithSecondImage('nowhere/missing.bin');
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 't',
      format: 'tar',
    });
    expect((await service.run(job.id)).status).toBe('failed');
    expect(await openOutputFiles()).toEqual([]);
  });

  it('an export cancelled after its last batch, just before completing, leaves no file', async () => {
    const { user, crawlJob } = await crawlJobWithSecondImage('inside-too.bin');
    await writeFile(path.join(storageDir, 'inside-too.bin'), 'x');
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'c',
      format: 'jsonl',
    });
    const done = await service.run(job.id, async (p) => {
      if (p.exportedImages === 3 && p.progress < 100) await service.cancel(user.id, job.id);
    });
    expect(done.status).toBe('cancelled');
    expect(await leftovers(job.id)).toEqual([]);
  });

  it('purgeExpired removes the files killed workers left, and only those', async () => {
    const { user, crawlJob } = await crawlJobWithSecondImage('inside-too.bin');
    const request = (name: string, format: 'csv' | 'zip') =>
      service.request(user.id, { crawlJobId: crawlJob.id, name, format });
    const killed = await request('killed', 'zip');
    const running = await request('running', 'zip');
    const completed = await request('completed', 'csv');
    await service.run(completed.id);
    await db.query(`UPDATE export_jobs SET status = 'failed' WHERE id = $1`, [killed.id]);
    await db.query(`UPDATE export_jobs SET status = 'running', started_at = now() WHERE id = $1`, [
      running.id,
    ]);
    await mkdir(outputDir, { recursive: true });
    const files = {
      killedPart: `export-${killed.id}.zip.part`,
      killedFinal: `export-${killed.id}.zip`,
      runningPart: `export-${running.id}.zip.part`,
      vanished: `export-999999.csv`,
      other: 'notes.txt',
    };
    for (const name of Object.values(files)) await writeFile(path.join(outputDir, name), 'x');
    await service.purgeExpired();
    const left = await readdir(outputDir);
    expect(left).not.toContain(files.killedPart);
    expect(left).not.toContain(files.killedFinal);
    expect(left).not.toContain(files.vanished);
    expect(left).toContain(files.runningPart);
    expect(left).toContain(files.other);
    expect(left).toContain(`export-${completed.id}.csv`);
  });

  it('recovering a stale export removes its .part file', async () => {
    const { user, crawlJob } = await crawlJobWithSecondImage('inside-too.bin');
    const job = await service.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 's',
      format: 'tar',
    });
    await db.query(
      `UPDATE export_jobs SET status = 'running', started_at = now(), updated_at = now() - interval '1 hour' WHERE id = $1`,
      [job.id],
    );
    await mkdir(outputDir, { recursive: true });
    await writeFile(path.join(outputDir, `export-${job.id}.tar.part`), 'half');
    expect((await service.recoverStale(60)).map((j) => j.id)).toContain(job.id);
    expect(await leftovers(job.id)).toEqual([]);
  });

  describe('csv manifests', () => {
    async function csvOf(protection: boolean | undefined) {
      const owned = await makeOwnedCrawlJob(ds);
      await new ImageRepository(ds).ingest(owned.crawlJob.id, [
        {
          originalUrl: 'https://example.com/a.jpg',
          filename: '=HYPERLINK("x")',
          storageUrl: '@SUM(A1)',
          format: '-1+1',
        },
        { originalUrl: 'https://example.com/b.jpg', filename: 'plain.jpg', format: '\tx' },
      ]);
      const exporter = new ExportJobService(ds, {
        outputDir,
        storage: new LocalDirectoryStorage(storageDir),
        ...(protection === undefined ? {} : { csvFormulaProtection: protection }),
      });
      const job = await exporter.request(owned.user.id, {
        crawlJobId: owned.crawlJob.id,
        name: 'csv',
        format: 'csv',
      });
      const done = await exporter.run(job.id);
      return readFile(exporter.filePath(done), 'utf8');
    }

    it('neutralise spreadsheet formulas by default', async () => {
      const text = await csvOf(undefined);
      expect(text).toContain(`"'=HYPERLINK(""x"")"`);
      expect(text).toContain(`"'@SUM(A1)"`);
      expect(text).toContain(`"'-1+1"`);
      expect(text).toContain(`"'\tx"`);
      expect(text).toContain('"plain.jpg"');
      for (const line of text.split('\n').slice(1)) {
        for (const cell of line.split(',')) expect(cell).not.toMatch(/^"?[=+\-@]/);
      }
    });

    it('keep the raw values when switched off', async () => {
      const text = await csvOf(false);
      expect(text).toContain('"=HYPERLINK(""x"")"');
      expect(text).toContain(',@SUM(A1),');
    });
  });
});
