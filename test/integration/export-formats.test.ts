import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import * as tar from 'tar-stream';
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
  neutralizeCsvFormula,
  type ExportDestination,
  type ManifestRow,
} from '../../src/services';
import { BlobContainerStorage } from '../../src/storage/blob-container-storage';
import { LocalDirectoryStorage, type ImageStorage } from '../../src/storage/image-storage';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

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
  `${'long-name-'.repeat(20)}.jpg`,
  ' spaced .jpg',
];

const TEXT = new Set(['original_url', 'filename', 'storage_url', 'format']);

/** What the csv writer before COPY produced for these rows (csv-stringify), formulas neutralised. */
function expectedCsv(rows: ManifestRow[]): string {
  const cells = rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([key, value]) => [
        key,
        TEXT.has(key) && typeof value === 'string' ? neutralizeCsvFormula(value) : value,
      ]),
    ),
  );
  return stringifyCsv(cells, { header: true, columns: [...MANIFEST_COLUMNS] });
}

/** What the jsonl writer before COPY produced: JSON.stringify of each row, one per line. */
const expectedJsonl = (rows: ManifestRow[]) =>
  rows.map((row) => `${JSON.stringify(row)}\n`).join('');

async function tarEntries(bytes: Buffer): Promise<Map<string, Buffer>> {
  const extract = tar.extract();
  const entries = new Map<string, Buffer>();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  await pipeline(Readable.from([bytes]), extract);
  await reading;
  return entries;
}

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
      });
      job = await crawlJobWithOddFiles(setup.put);
      rows = await rowsOf(job.crawlJobId);
    });

    async function runExport(format: ExportFormat) {
      const requested = await service.request(job.userId, {
        crawlJobId: job.crawlJobId,
        name: `${where} ${format}`,
        format,
      });
      const progress: number[] = [];
      const done = await service.run(requested.id, (p) => {
        progress.push(p.exportedImages);
      });
      expect(done).toMatchObject({
        status: 'completed',
        errorMessage: null,
        totalImages: rows.length,
        exportedImages: rows.length,
      });
      // Every 4 rows (batchSize), then the rest, then completion.
      expect(progress).toEqual([4, 8, 12, 16, 20, rows.length, rows.length]);
      const bytes = await exportBytes(done.downloadUrl!);
      expect(done.fileSize).toBe(bytes.length);
      return bytes;
    }

    it('csv: byte for byte what csv-stringify wrote, formulas neutralised', async () => {
      const bytes = await runExport('csv');
      expect(bytes.toString('utf8')).toBe(expectedCsv(rows));
    });

    it('jsonl: byte for byte what JSON.stringify wrote, one row per line', async () => {
      const bytes = await runExport('jsonl');
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
        const bytes = await runExport(format);
        const entries = format === 'zip' ? await zipEntries(bytes) : await tarEntries(bytes);
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
        const requested = await service.request(owned.user.id, {
          crawlJobId: owned.crawlJob.id,
          name: 'missing',
          format,
        });
        const done = await service.run(requested.id);
        expect(done.status).toBe('failed');
        expect(done.errorMessage).toContain(`image ${missing.id}:`);
        expect(done.errorMessage).toMatch(/not found/);
        expect(done.downloadUrl).toBeNull();
      }
      expect(await setup.leftovers()).toEqual(before);
    });
  });
});
