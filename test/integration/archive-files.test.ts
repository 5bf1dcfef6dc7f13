import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { DataSource } from 'typeorm';
import * as unzipper from 'unzipper';
import {
  ARCHIVE_MANIFEST,
  archiveEntryName,
  ExportJobService,
  LocalDirectoryDestination,
  type ExportDestination,
} from '../../src/services';
import {
  LocalDirectoryStorage,
  type ArchiveLayout,
  type ImageFile,
  type LaidOutFiles,
  type StoredImage,
} from '../../src/storage/image-storage';
import { tarEntries } from '../helpers/archives';
import { runExport } from '../helpers/exports';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * Archives of many files, as crawls make them: local storage reads runs of small files on a
 * thread of its own, laid out as the archive holds them, and hands anything unusual (a large
 * file, a symlink, not a regular file, a bad path) back to be read on its own. These tests hold
 * the two ways to the same bytes, the same order and the same errors.
 */
describe('archive exports of many files', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;

  beforeAll(async () => {
    db = await createTestDatabase('archive_files');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-archive-files-'));
  });
  afterAll(async () => {
    await db?.drop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /**
   * A storage directory with an export service writing next to it. A local file stream is done
   * with a chunk once written (`releasesChunks`): the reader's segments go out as they are. With
   * `releasing` false, the destination does not say so, and segments are copied out.
   */
  async function place(label: string, releasing = true) {
    const dir = await mkdtemp(path.join(root, `${label}-`));
    const storageDir = path.join(dir, 'storage');
    await mkdir(storageDir);
    const local = new LocalDirectoryDestination(path.join(dir, 'out'));
    const destination: ExportDestination = releasing
      ? local
      : {
          locate: (name) => local.locate(name),
          remove: (name) => local.remove(name),
          list: () => local.list(),
          begin: async (name) => {
            const { stream, commit, abort } = await local.begin(name);
            return { stream, commit, abort };
          },
        };
    const service = new ExportJobService(ds, {
      destination,
      storage: new LocalDirectoryStorage(storageDir),
      progressIntervalMs: 0,
    });
    return { storageDir, service };
  }

  /**
   * A crawl job of `sizes.length` images with files of those sizes (bytes random), inserted with
   * plain SQL; `name(i)` gives a filename. Returns the expected archive entries in order.
   */
  async function crawlJobWithFiles(
    storageDir: string,
    sizes: number[],
    name: (i: number) => string = (i) => `img_${i}.jpg`,
  ) {
    const { user, crawlJob } = await makeOwnedCrawlJob(ds);
    const directory = path.join(storageDir, `job-${crawlJob.id}`);
    await mkdir(directory, { recursive: true });
    const files: Array<{ key: string; bytes: Buffer }> = [];
    for (const [i, size] of sizes.entries()) {
      const key = `job-${crawlJob.id}/${i}.bin`;
      const bytes = randomBytes(size);
      await writeFile(path.join(storageDir, key), bytes);
      files.push({ key, bytes });
    }
    const ids = await db.query<{ id: number }>(
      `INSERT INTO images (crawl_job_id, original_url, filename, storage_url, file_size)
       SELECT $1, 'https://example.com/' || n, f.name, f.key, f.size
         FROM unnest($2::text[], $3::text[], $4::int[]) WITH ORDINALITY AS f(name, key, size, n)
        ORDER BY n
       RETURNING id`,
      [crawlJob.id, sizes.map((_, i) => name(i)), files.map((f) => f.key), sizes],
    );
    const entries = ids.map(({ id }, i): [string, Buffer] => [
      archiveEntryName({ id, filename: name(i) }),
      files[i].bytes,
    ]);
    return { userId: user.id, crawlJobId: crawlJob.id, entries, ids: ids.map((r) => r.id) };
  }

  /** The archive's file entries (the manifest dropped), in order; zip CRCs checked. */
  async function filesIn(format: 'zip' | 'tar', file: string): Promise<Array<[string, Buffer]>> {
    if (format === 'tar') {
      const entries = await tarEntries(file);
      expect(entries[0][0]).toBe(ARCHIVE_MANIFEST);
      return entries.slice(1);
    }
    const directory = await unzipper.Open.file(file);
    const entries: Array<[string, Buffer]> = [];
    for (const entry of directory.files) {
      const content = await entry.buffer();
      expect(entry.crc32 >>> 0).toBe(crc32(content));
      entries.push([entry.path, content]);
    }
    expect(entries[0][0]).toBe(ARCHIVE_MANIFEST);
    return entries.slice(1);
  }

  it.each([
    ['tar', 'written as read'],
    ['zip', 'written as read'],
    ['tar', 'copied'],
    ['zip', 'copied'],
  ] as const)(
    '%s, segments %s: thousands of files, with large files, long names and an empty one in between',
    async (format, segments) => {
      const { storageDir, service } = await place(`many-${format}`, segments === 'written as read');
      // 8-16 KiB files make some 24 MiB of segments, more than the reader's slots hold at once
      // (so they are filled again while earlier ones are being written); 300 KiB and 2 MiB files
      // are read on their own (over the thread's limit), a 17 MiB one is streamed; long and
      // unicode names need a PAX header (tar); one file is empty.
      const sizes = Array.from({ length: 2000 }, (_, i) => 8192 + ((i * 7919) % 8192));
      sizes[3] = 0;
      sizes[700] = 300 * 1024;
      sizes[701] = 2 * 1024 * 1024;
      sizes[1200] = 17 * 1024 * 1024;
      const name = (i: number) =>
        i % 250 === 7
          ? `${'long-name-'.repeat(12)}${i}.jpg`
          : i % 250 === 8
            ? `猫-${i}.jpg`
            : `img_${i}.jpg`;
      const job = await crawlJobWithFiles(storageDir, sizes, name);
      const progress: number[] = [];
      const done = await runExport(service, job, format, {
        onProgress: (p) => progress.push(p.exportedImages),
      });
      expect(done).toMatchObject({ status: 'completed', exportedImages: sizes.length });
      // Progress counts written files exactly, at multiples of 1,000 even inside a segment.
      expect(progress).toEqual([1000, 2000, 2000]);
      const entries = await filesIn(format, service.filePath(done));
      expect(entries.map(([n]) => n)).toEqual(job.entries.map(([n]) => n));
      entries.forEach(([, bytes], i) => expect(bytes.equals(job.entries[i][1])).toBe(true));
    },
  );

  it('two archive exports at once share the reading thread and each gets its own files', async () => {
    const { storageDir, service } = await place('concurrent');
    const sizes = Array.from({ length: 600 }, (_, i) => 512 + ((i * 31) % 4096));
    const [first, second] = [
      await crawlJobWithFiles(storageDir, sizes),
      await crawlJobWithFiles(storageDir, [...sizes].reverse()),
    ];
    const [tar, zip] = await Promise.all([
      runExport(service, first, 'tar'),
      runExport(service, second, 'zip'),
    ]);
    expect(tar.status).toBe('completed');
    expect(zip.status).toBe('completed');
    for (const [job, format, done] of [
      [first, 'tar', tar],
      [second, 'zip', zip],
    ] as const) {
      const entries = await filesIn(format, service.filePath(done));
      expect(entries.length).toBe(job.entries.length);
      entries.forEach(([n, bytes], i) => {
        expect(n).toBe(job.entries[i][0]);
        expect(bytes.equals(job.entries[i][1])).toBe(true);
      });
    }
  });

  it('a FIFO where an image should be fails the export at once as not a regular file', async () => {
    const { storageDir, service } = await place('fifo');
    const job = await crawlJobWithFiles(storageDir, [100, 200, 300]);
    const fifo = path.join(storageDir, `job-${job.crawlJobId}/1.bin`);
    await rm(fifo);
    execFileSync('mkfifo', [fifo]);
    for (const format of ['tar', 'zip'] as const) {
      const done = await runExport(service, job, format);
      expect(done.status).toBe('failed');
      expect(done.errorMessage).toContain(`image ${job.ids[1]}: not a regular file`);
    }
  });

  it('a file removed from the middle of a run fails the export naming that image', async () => {
    const { storageDir, service } = await place('gone');
    const job = await crawlJobWithFiles(
      storageDir,
      Array.from({ length: 400 }, () => 2000),
    );
    await rm(path.join(storageDir, `job-${job.crawlJobId}/250.bin`));
    for (const format of ['tar', 'zip'] as const) {
      const done = await runExport(service, job, format);
      expect(done.status).toBe('failed');
      expect(done.errorMessage).toMatch(new RegExp(`image ${job.ids[250]}: file not found`));
    }
  });

  it('tar: a manifest larger than the 4 MiB it holds is read twice, the same bytes as jsonl', async () => {
    const { storageDir, service } = await place('big-manifest');
    const job = await crawlJobWithFiles(storageDir, Array<number>(2300).fill(10));
    await db.query(
      `UPDATE images SET original_url = original_url || '?' || repeat('x', 1900)
        WHERE crawl_job_id = $1`,
      [job.crawlJobId],
    );
    const tar = await runExport(service, job, 'tar');
    const jsonl = await runExport(service, job, 'jsonl');
    expect([tar.status, jsonl.status]).toEqual(['completed', 'completed']);
    const entries = await tarEntries(service.filePath(tar));
    const [name, manifest] = entries[0];
    expect(name).toBe(ARCHIVE_MANIFEST);
    expect(manifest.length).toBeGreaterThan(4 << 20);
    expect(manifest.equals(await readFile(service.filePath(jsonl)))).toBe(true);
    expect(entries.slice(1).map(([n]) => n)).toEqual(job.entries.map(([n]) => n));
  });

  describe('LocalDirectoryStorage.reader().readLaidOut', () => {
    const collect = async (
      storage: LocalDirectoryStorage,
      images: StoredImage[],
      layout: ArchiveLayout,
    ) => {
      const pieces: Array<LaidOutFiles | ImageFile> = [];
      // A run's bytes are the reader's until released: copied, then released.
      const reader = storage.reader();
      try {
        for await (const piece of reader.readLaidOut!(images, layout)) {
          if (!('files' in piece)) {
            pieces.push(piece);
            continue;
          }
          pieces.push({ ...piece, bytes: Buffer.from(piece.bytes) });
          piece.release();
        }
      } finally {
        reader.close!();
      }
      return pieces;
    };

    it('lays files out with room for each header, padding of zeros and their CRC-32', async () => {
      // Twice: the second run's segments are the first's memory again, not fresh zeros.
      for (const round of [1, 2]) await layOut(round);
    });

    async function layOut(round: number) {
      const storageDir = await mkdtemp(path.join(root, 'layout-'));
      const contents = [
        randomBytes(1),
        randomBytes(512),
        randomBytes(700 * round),
        Buffer.alloc(0),
      ];
      for (const [i, bytes] of contents.entries()) {
        await writeFile(path.join(storageDir, `${i}.bin`), bytes);
      }
      const images = contents.map((_, i) => ({ id: i + 1, storageUrl: `${i}.bin` }));
      const room = (image: StoredImage) => 100 + image.id;
      const pieces = await collect(new LocalDirectoryStorage(storageDir), images, {
        headerBytes: room,
        block: 512,
        crc: true,
      });
      expect(pieces).toHaveLength(1);
      const [{ bytes, files }] = pieces as LaidOutFiles[];
      let at = 0;
      files.forEach((file, i) => {
        const padded = Math.ceil(contents[i].length / 512) * 512;
        expect(file).toEqual({ offset: at, size: contents[i].length, crc: crc32(contents[i]) });
        const start = at + room(images[i]);
        expect(bytes.subarray(start, start + contents[i].length).equals(contents[i])).toBe(true);
        expect(
          bytes.subarray(start + contents[i].length, start + padded).every((b) => b === 0),
        ).toBe(true);
        at = start + padded;
      });
      expect(bytes.length).toBe(at);
    }

    it('hands back, in their place, a symlink inside the root, and fails on one leading out', async () => {
      const storageDir = await mkdtemp(path.join(root, 'links-'));
      const outside = await mkdtemp(path.join(root, 'outside-'));
      const secret = path.join(outside, 'secret.txt');
      await writeFile(secret, 'not for export');
      await writeFile(path.join(storageDir, 'a.bin'), 'a');
      await writeFile(path.join(storageDir, 'target.bin'), 'linked');
      await symlink(path.join(storageDir, 'target.bin'), path.join(storageDir, 'link.bin'));
      await symlink(secret, path.join(storageDir, 'out.bin'));
      await writeFile(path.join(storageDir, 'c.bin'), 'c');
      const storage = new LocalDirectoryStorage(storageDir);
      const layout: ArchiveLayout = { headerBytes: () => 0, block: 1, crc: false };
      const pieces = await collect(
        storage,
        ['a.bin', 'link.bin', 'c.bin'].map((storageUrl, i) => ({ id: i + 1, storageUrl })),
        layout,
      );
      expect(pieces.map((p) => ('files' in p ? p.files.length : 'alone'))).toEqual([1, 'alone', 1]);
      const alone = pieces[1] as ImageFile;
      const target = Buffer.alloc(alone.size);
      if (!('copyTo' in alone)) throw new Error('a small file is read whole');
      alone.copyTo(target, 0);
      expect(target.toString()).toBe('linked');

      const reads = collect(
        storage,
        ['a.bin', 'out.bin'].map((storageUrl, i) => ({ id: i + 1, storageUrl })),
        layout,
      );
      await expect(reads).rejects.toThrow(/^image 2: resolves to .*outside the storage root/);
      expect(await readFile(secret, 'utf8')).toBe('not for export');
    });
  });
});
