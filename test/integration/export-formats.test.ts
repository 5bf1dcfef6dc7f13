import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { DataSource } from 'typeorm';
import * as unzipper from 'unzipper';
import type { ExportFormat } from '../../src/entities/value-sets';
import {
  ARCHIVE_MANIFEST,
  archiveEntryName,
  BlobContainerDestination,
  ExportJobService,
  LocalDirectoryDestination,
  MANIFEST_COLUMNS,
  neutraliseCsvFormula,
  type ExportDestination,
  type ManifestRow,
} from '../../src/services';
import { BlobContainerStorage } from '../../src/storage/blob-container-storage';
import { LocalDirectoryStorage, type ImageStorage } from '../../src/storage/image-storage';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { tarEntries } from '../helpers/archives';
import { runExport } from '../helpers/exports';

/**
 * Every export format to every kind of destination, reading files from local disk and from a
 * blob container (Azurite, a real Azure Storage API server), with values that break naive
 * writers. The manifests are compared byte for byte with what the row-by-row writers this
 * package had before COPY wrote (csv-stringify; JSON.stringify per line), csv formulas
 * neutralised.
 */

/** Values that break naive csv/json writers or spreadsheets. */
const ODD = [
  'plain.jpg',
  'comma,in,name.jpg',
  'quote"in"name.jpg',
  'new\nline.jpg',
  'carriage\rreturn.jpg',
  'crlf\r\nboth.jpg',
  'back\\slash.jpg',
  'tab\tinside.jpg',
  'ünïcödé-猫-🐱.jpg',
  '=HYPERLINK("http://evil.example")',
  '+1+2.jpg',
  '-1.jpg',
  '@SUM(A1).jpg',
  '\tleading-tab.jpg',
  '\rleading-cr.jpg',
  "'already-quoted.jpg",
  '""',
  '\\.',
  'ctrl\u0001\u001fchar.jpg',
  'bs\bff\fdel\u007fls\u2028ps\u2029.jpg',
  `${'long-name-'.repeat(20)}.jpg`,
  ' spaced .jpg',
  // A comma and a quote then a trigger inside a value: not a cell start, left alone.
  'comma-quote,"=inside',
  'ends-with,"',
  '",@',
  ',"+',
];

const TEXT = new Set(['original_url', 'filename', 'storage_url', 'format']);

/**
 * What the csv writer before COPY produced for these rows (csv-stringify): with formula
 * protection (the default), text cells neutralised and quoted; without, the raw values.
 */
function expectedCsv(rows: ManifestRow[], protection = true): string {
  if (!protection) return stringifyCsv(rows, { header: true, columns: [...MANIFEST_COLUMNS] });
  const cells = rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([key, value]) => [
        key,
        TEXT.has(key) && typeof value === 'string' ? neutraliseCsvFormula(value) : value,
      ]),
    ),
  );
  return stringifyCsv(cells, {
    header: true,
    columns: [...MANIFEST_COLUMNS],
    quoted_string: true,
  });
}

/** What the jsonl writer before COPY produced: JSON.stringify of each row, one per line. */
const expectedJsonl = (rows: ManifestRow[]) =>
  rows.map((row) => `${JSON.stringify(row)}\n`).join('');

async function zipEntries(bytes: Buffer): Promise<Map<string, Buffer>> {
  const directory = await unzipper.Open.buffer(bytes);
  const entries = new Map<string, Buffer>();
  for (const entry of directory.files) {
    const content = await entry.buffer();
    // The CRC the archive records is the content's: unzip tools check it.
    expect(entry.crc32 >>> 0).toBe(crc32(content));
    entries.set(entry.path, content);
  }
  return entries;
}

describe('exports of every format, local and blob storage', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let azurite: Azurite;
  let blobs: BlobServiceClient;
  let root: string;

  beforeAll(async () => {
    [db, azurite] = await Promise.all([createTestDatabase('export_formats'), startAzurite()]);
    await db.migrate();
    ds = await db.connect();
    blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-export-formats-'));
  });
  afterAll(async () => {
    await db?.drop();
    await azurite?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const rowsOf = (crawlJobId: number) =>
    db.query<ManifestRow>(
      `SELECT ${MANIFEST_COLUMNS.join(', ')} FROM images WHERE crawl_job_id = $1 ORDER BY id`,
      [crawlJobId],
    );

  /** A fresh container (names are 3-63 lower-case letters, digits and dashes). */
  async function container(label: string): Promise<ContainerClient> {
    const client = blobs.getContainerClient(`${label}-${randomBytes(4).toString('hex')}`);
    await client.create();
    return client;
  }

  /**
   * Inserts rows with plain SQL (no input rules in the way) whose text columns hold the odd
   * values; every image has a file of its own bytes (one of them empty), stored by `put`.
   */
  async function crawlJobWithOddFiles(
    put: (key: string, bytes: Buffer) => Promise<string>,
  ): Promise<{ userId: string; crawlJobId: number; files: Map<string, Buffer> }> {
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    const files = new Map<string, Buffer>();
    for (const [i, odd] of ODD.entries()) {
      const bytes = i === 0 ? Buffer.alloc(0) : randomBytes(i * 97 + (i % 2 ? 512 : 3));
      const storageUrl = await put(`job-${crawlJob.id}/${i}.bin`, bytes);
      const [{ id }] = await db.query<{ id: number }>(
        `INSERT INTO images (crawl_job_id, original_url, filename, storage_url, width, height, file_size, format)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
        [
          crawlJob.id,
          `https://example.com/${i}?q=${odd}`,
          odd,
          storageUrl,
          i % 3 === 0 ? null : 640,
          i % 4 === 0 ? null : 480,
          bytes.length,
          i % 5 === 0 ? null : ['jpeg', '', '=x', 'png'][i % 4],
        ],
      );
      files.set(archiveEntryName({ id, filename: odd }), bytes);
    }
    return { userId: user.id, crawlJobId: crawlJob.id, files };
  }

  /** The export's bytes, fetched the way a user would: its file, or its SAS download URL. */
  async function exportBytes(downloadUrl: string): Promise<Buffer> {
    if (downloadUrl.startsWith('file:')) return readFile(new URL(downloadUrl));
    const response = await fetch(downloadUrl);
    expect(response.status).toBe(200);
    return Buffer.from(await response.arrayBuffer());
  }

  interface Setup {
    storage: ImageStorage;
    destination: ExportDestination;
    put: (key: string, bytes: Buffer) => Promise<string>;
    /** What is left at the destination (file or blob names). */
    leftovers: () => Promise<string[]>;
  }

  const setups: Record<'local' | 'blob', () => Promise<Setup>> = {
    local: async () => {
      const dir = await mkdtemp(path.join(root, 'local-'));
      const storageDir = path.join(dir, 'storage');
      const outputDir = path.join(dir, 'out');
      return {
        storage: new LocalDirectoryStorage(storageDir),
        destination: new LocalDirectoryDestination(outputDir),
        put: async (key, bytes) => {
          await mkdir(path.dirname(path.join(storageDir, key)), { recursive: true });
          await writeFile(path.join(storageDir, key), bytes);
          return key;
        },
        leftovers: () => readdir(outputDir).catch(() => []),
      };
    },
    blob: async () => {
      const images = await container('images');
      const exports = await container('exports');
      let n = 0;
      return {
        storage: new BlobContainerStorage(images),
        destination: new BlobContainerDestination(exports, { prefix: 'exports/' }),
        put: async (key, bytes) => {
          await images.getBlockBlobClient(key).uploadData(bytes);
          // Half the rows name the blob, half give its full URL: both are storage_url forms.
          return n++ % 2 ? key : images.getBlobClient(key).url;
        },
        leftovers: async () => {
          const names: string[] = [];
          for await (const blob of exports.listBlobsFlat()) names.push(blob.name);
          return names;
        },
      };
    },
  };

  describe('blob destination: download links and purging', () => {
    let exports: ContainerClient;
    let images: ContainerClient;
    let service: ExportJobService;

    beforeAll(async () => {
      exports = await container('exports');
      images = await container('images');
      service = new ExportJobService(ds, {
        destination: new BlobContainerDestination(exports),
        storage: new BlobContainerStorage(images),
      });
    });

    async function completedExport(format: ExportFormat, options = {}) {
      const { user, crawlJob } = await makeOwnedCrawlJob(ds);
      await images.getBlockBlobClient(`c${crawlJob.id}/a.bin`).uploadData(Buffer.from('abc'));
      await db.query(
        `INSERT INTO images (crawl_job_id, original_url, filename, storage_url)
         VALUES ($1, 'https://e.com/a', 'a.jpg', $2)`,
        [crawlJob.id, `c${crawlJob.id}/a.bin`],
      );
      const owner = { userId: user.id, crawlJobId: crawlJob.id };
      const done = await runExport(service, owner, format, { name: 'sas', exportOptions: options });
      return { user, done };
    }

    it('download_url is a read-only SAS URL of the blob that expires at expires_at', async () => {
      const before = Date.now();
      const { done } = await completedExport('tar', { expiresInHours: 3 });
      expect(done.status).toBe('completed');
      const url = new URL(done.downloadUrl!);
      expect(`${url.origin}${url.pathname}`).toBe(
        exports.getBlobClient(`export-${done.id}.tar`).url,
      );
      expect(url.searchParams.get('sp')).toBe('r');
      expect(new Date(url.searchParams.get('se')!).getTime()).toBe(done.expiresAt!.getTime());
      expect(done.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 3 * 3_600_000 - 1000);
      expect(done.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 3 * 3_600_000);

      const read = await fetch(done.downloadUrl!);
      expect(read.status).toBe(200);
      expect(read.headers.get('content-type')).toBe('application/x-tar');
      expect(Number(read.headers.get('content-length'))).toBe(done.fileSize);
      // Read only: the same signature cannot overwrite or delete the blob.
      const write = await fetch(done.downloadUrl!, {
        method: 'PUT',
        headers: { 'x-ms-blob-type': 'BlockBlob' },
        body: 'overwritten',
      });
      expect(write.status).toBe(403);
      expect((await fetch(done.downloadUrl!, { method: 'DELETE' })).status).toBe(403);
    });

    it('purgeExpired deletes the expired export blobs and clears their download_url', async () => {
      const { user, done } = await completedExport('csv');
      const kept = await completedExport('jsonl');
      const blob = exports.getBlobClient(`export-${done.id}.csv`);
      expect(await blob.exists()).toBe(true);
      await db.query(
        `UPDATE export_jobs SET expires_at = now() - interval '1 minute' WHERE id = $1`,
        [done.id],
      );
      expect(await service.purgeExpired()).toEqual([done.id]);
      expect(await blob.exists()).toBe(false);
      expect(await exports.getBlobClient(`export-${kept.done.id}.jsonl`).exists()).toBe(true);
      expect(await service.get(user.id, done.id)).toMatchObject({
        status: 'completed',
        downloadUrl: null,
        fileSize: null,
      });
    });

    it('a destination whose container client cannot sign is refused when built, saying what to do', () => {
      const anonymous = new BlobServiceClient(blobs.url).getContainerClient(exports.containerName);
      expect(() => new BlobContainerDestination(anonymous)).toThrow(/StorageSharedKeyCredential/);
      expect(() => new BlobContainerDestination(exports, { prefix: '../up/' })).toThrow(/"\.\."/);
    });
  });

  describe('confinement: nothing outside the storage is read', () => {
    it.each([
      ['a URL of another container', (other: string) => `${other}/secret.bin`],
      ['a name climbing out with ..', () => '../secret/secret.bin'],
      [
        'a URL climbing out with %2e%2e',
        (_: string, own: string) => `${own}/%2e%2e/secret/secret.bin`,
      ],
      [
        'a URL with an encoded slash and ..',
        (_: string, own: string) => `${own}/a%2F..%2F..%2Fsecret%2Fsecret.bin`,
      ],
      ['a URL of another host', () => 'https://attacker.example.com/images/x.bin'],
    ])(
      'blob storage refuses %s, naming the image, and no byte of it reaches the archive',
      async (_label, storageUrl) => {
        const images = await container('images');
        const other = await container('secret');
        await other.getBlockBlobClient('secret.bin').uploadData(Buffer.from('SECRET BYTES'));
        const storage = new BlobContainerStorage(images);
        const exports = await container('exports');
        const service = new ExportJobService(ds, {
          destination: new BlobContainerDestination(exports),
          storage,
        });
        const { user, crawlJob } = await makeOwnedCrawlJob(ds);
        const [{ id }] = await db.query<{ id: number }>(
          `INSERT INTO images (crawl_job_id, original_url, filename, storage_url)
         VALUES ($1, 'https://e.com/x', 'x.jpg', $2) RETURNING id`,
          [crawlJob.id, storageUrl(other.url, images.url)],
        );
        const done = await runExport(service, { userId: user.id, crawlJobId: crawlJob.id }, 'zip');
        expect(done.status).toBe('failed');
        expect(done.errorMessage).toContain(`image ${id}:`);
        const left: string[] = [];
        for await (const blob of exports.listBlobsFlat()) left.push(blob.name);
        expect(left).toEqual([]);
      },
    );

    it('local storage refuses a symlink leading out of the root, and a file:// URL outside it', async () => {
      const dir = await mkdtemp(path.join(root, 'confine-'));
      const storageDir = path.join(dir, 'storage');
      const outside = path.join(dir, 'outside');
      await mkdir(path.join(storageDir, 'job'), { recursive: true });
      await mkdir(outside, { recursive: true });
      await writeFile(path.join(outside, 'secret.bin'), 'SECRET BYTES');
      await symlink(path.join(outside, 'secret.bin'), path.join(storageDir, 'job', 'link.bin'));
      await symlink(outside, path.join(storageDir, 'linked-dir'));
      await writeFile(path.join(storageDir, 'job', 'real.bin'), 'real');
      await symlink(
        path.join(storageDir, 'job', 'real.bin'),
        path.join(storageDir, 'job', 'inside.bin'),
      );
      const outputDir = path.join(dir, 'out');
      const service = new ExportJobService(ds, {
        destination: new LocalDirectoryDestination(outputDir),
        storage: new LocalDirectoryStorage(storageDir),
      });
      for (const storageUrl of [
        'job/link.bin',
        'linked-dir/secret.bin',
        `file://${outside}/secret.bin`,
      ]) {
        const { user, crawlJob } = await makeOwnedCrawlJob(ds);
        const [{ id }] = await db.query<{ id: number }>(
          `INSERT INTO images (crawl_job_id, original_url, filename, storage_url)
           VALUES ($1, 'https://e.com/x', 'x.jpg', $2) RETURNING id`,
          [crawlJob.id, storageUrl],
        );
        const done = await runExport(service, { userId: user.id, crawlJobId: crawlJob.id }, 'tar');
        expect(done.status).toBe('failed');
        expect(done.errorMessage).toContain(`image ${id}:`);
        expect(done.errorMessage).toMatch(
          /outside the storage root|not a file under the storage root/,
        );
      }
      expect(await readdir(outputDir).catch(() => [])).toEqual([]);

      // A symlink that stays inside the root is an ordinary file.
      const { user, crawlJob } = await makeOwnedCrawlJob(ds);
      await db.query(
        `INSERT INTO images (crawl_job_id, original_url, filename, storage_url)
         VALUES ($1, 'https://e.com/x', 'x.jpg', 'job/inside.bin')`,
        [crawlJob.id],
      );
      const done = await runExport(service, { userId: user.id, crawlJobId: crawlJob.id }, 'tar');
      expect(done.status).toBe('completed');
    });
  });

  describe.each(['local', 'blob'] as const)('%s storage and destination', (where) => {
    let setup: Setup;
    let service: ExportJobService;
    let job: Awaited<ReturnType<typeof crawlJobWithOddFiles>>;
    let rows: ManifestRow[];

    beforeAll(async () => {
      setup = await setups[where]();
      service = new ExportJobService(ds, {
        destination: setup.destination,
        storage: setup.storage,
        batchSize: 4,
        progressIntervalMs: 0,
      });
      job = await crawlJobWithOddFiles(setup.put);
      rows = await rowsOf(job.crawlJobId);
    });

    async function exportedBytes(format: ExportFormat) {
      const progress: number[] = [];
      const done = await runExport(service, job, format, {
        name: `${where} ${format}`,
        onProgress: (p) => progress.push(p.exportedImages),
      });
      expect(done).toMatchObject({
        status: 'completed',
        errorMessage: null,
        totalImages: rows.length,
        exportedImages: rows.length,
      });
      // Every 4 rows (batchSize), then the rest, then completion.
      const multiples = Array.from(
        { length: Math.ceil(rows.length / 4) - 1 },
        (_, i) => 4 * (i + 1),
      );
      expect(progress).toEqual([...multiples, rows.length, rows.length]);
      const bytes = await exportBytes(done.downloadUrl!);
      expect(done.fileSize).toBe(bytes.length);
      return bytes;
    }

    it('csv: byte for byte what csv-stringify wrote, formulas neutralised, text cells quoted', async () => {
      const bytes = await exportedBytes('csv');
      expect(bytes.toString('utf8')).toBe(expectedCsv(rows));
    });

    it('csv without formula protection: byte for byte what csv-stringify wrote of the raw values', async () => {
      const plain = new ExportJobService(ds, {
        destination: setup.destination,
        csvFormulaProtection: false,
      });
      const done = await runExport(plain, job, 'csv', { name: 'plain' });
      expect(done.status).toBe('completed');
      const bytes = await exportBytes(done.downloadUrl!);
      expect(bytes.toString('utf8')).toBe(expectedCsv(rows, false));
    });

    it('jsonl: byte for byte what JSON.stringify wrote, one row per line', async () => {
      const bytes = await exportedBytes('jsonl');
      expect(bytes.toString('utf8')).toBe(expectedJsonl(rows));
      expect(
        bytes
          .toString('utf8')
          .split('\n')
          .slice(0, -1)
          .map((l) => JSON.parse(l)),
      ).toEqual(rows);
    });

    it.each(['zip', 'tar'] as const)(
      '%s: manifest.jsonl byte for byte, and every image file as stored',
      async (format) => {
        const bytes = await exportedBytes(format);
        const entries =
          format === 'zip' ? await zipEntries(bytes) : new Map(await tarEntries(bytes));
        expect(entries.get(ARCHIVE_MANIFEST)?.toString('utf8')).toBe(expectedJsonl(rows));
        expect(entries.size).toBe(rows.length + 1);
        for (const [name, content] of job.files) expect(entries.get(name)).toEqual(content);
      },
    );

    it('a zip or tar export of an image whose file is missing fails naming it, leaving nothing', async () => {
      const owned = await makeOwnedCrawlJob(ds);
      const storageUrl = await setup.put(`job-${owned.crawlJob.id}/present.bin`, randomBytes(10));
      const [, missing] = await db.query<{ id: number }>(
        `INSERT INTO images (crawl_job_id, original_url, filename, storage_url)
         VALUES ($1, 'https://e.com/1', 'present.jpg', $2), ($1, 'https://e.com/2', 'gone.jpg', $3)
         RETURNING id`,
        [owned.crawlJob.id, storageUrl, `job-${owned.crawlJob.id}/gone.bin`],
      );
      const before = await setup.leftovers();
      for (const format of ['zip', 'tar'] as const) {
        const done = await runExport(
          service,
          { userId: owned.user.id, crawlJobId: owned.crawlJob.id },
          format,
          { name: 'missing' },
        );
        expect(done.status).toBe('failed');
        expect(done.errorMessage).toContain(`image ${missing.id}:`);
        expect(done.errorMessage).toMatch(/not found/);
        expect(done.downloadUrl).toBeNull();
      }
      expect(await setup.leftovers()).toEqual(before);
    });
  });
});
