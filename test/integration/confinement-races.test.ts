import { spawn } from 'node:child_process';
import { closeSync, readSync, realpathSync } from 'node:fs';
import {
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import * as unzipper from 'unzipper';
import { ExportJobService } from '../../src/services';
import { ConfinedFiles } from '../../src/storage/file-confinement';
import {
  LocalDirectoryStorage,
  type ArchiveLayout,
  type ImageFile,
  type StoredImage,
} from '../../src/storage/image-storage';
import { tarEntries } from '../helpers/archives';
import { runExport } from '../helpers/exports';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** Bytes that exist only outside the storage root: no export may ever hold them. */
const SECRET = 'SECRET-OUTSIDE-THE-ROOT';

/**
 * Confinement is proven for each file after it is opened, not once per directory: a directory of
 * the storage swapped for a symlink to a directory outside it, between two reads or during an
 * export, yields an error, never the outside file's bytes. Hard links are refused unless allowed.
 */
describe('confinement holds when the storage changes under an export', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let outside: string;

  beforeAll(async () => {
    db = await createTestDatabase('confinement_races');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-races-'));
    outside = path.join(root, 'outside');
    await mkdir(outside);
  });
  afterAll(async () => {
    await db?.drop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** A storage root whose directory `a` holds `count` files; `outside` holds the same names. */
  async function storageWithDirectory(label: string, count: number) {
    const storageDir = path.join(root, label);
    await mkdir(path.join(storageDir, 'a'), { recursive: true });
    for (let i = 0; i < count; i++) {
      await writeFile(path.join(storageDir, 'a', `${i}.bin`), `inside ${i}`);
      await writeFile(path.join(outside, `${i}.bin`), `${SECRET} ${i}`);
    }
    return storageDir;
  }

  /** Turns `a` into a symlink to `outside` (the real directory is kept as `a_real`), or back. */
  async function swap(storageDir: string, to: 'symlink' | 'directory') {
    const a = path.join(storageDir, 'a');
    if (to === 'symlink') {
      await rename(a, `${a}_real`);
      await symlink(outside, a);
    } else {
      await rm(a);
      await rename(`${a}_real`, a);
    }
  }

  const layout: ArchiveLayout = { headerBytes: () => 0, block: 1, crc: false };

  async function readWhole(file: ImageFile): Promise<string> {
    if ('bytes' in file) return file.bytes.toString();
    if ('stream' in file) {
      const chunks: Buffer[] = [];
      for await (const chunk of file.stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString();
    }
    const target = Buffer.alloc(file.size);
    file.copyTo(target, 0);
    return target.toString();
  }

  /** Every byte one reader's readLaidOut hands out for these images (runs and single files). */
  async function readLaidOut(
    reader: ReturnType<LocalDirectoryStorage['reader']>,
    images: StoredImage[],
  ) {
    let text = '';
    for await (const piece of reader.readLaidOut!(images, layout)) {
      if ('files' in piece) {
        text += piece.bytes.toString();
        piece.release();
      } else {
        text += await readWhole(piece);
      }
    }
    return text;
  }

  it('the same reader refuses a file once its directory became a symlink out of the root', async () => {
    const storageDir = await storageWithDirectory('between-reads', 2);
    const storage = new LocalDirectoryStorage(storageDir);
    const images = [{ id: 1, storageUrl: 'a/0.bin' }];
    const reader = storage.reader();
    try {
      expect(await readWhole(await reader.read(images[0]))).toBe('inside 0');
      expect(await readLaidOut(reader, images)).toBe('inside 0');
      await swap(storageDir, 'symlink');
      expect(() => reader.read(images[0])).toThrow(
        /^image 1: resolves to .*outside.*, outside the storage root/,
      );
      await expect(readLaidOut(reader, images)).rejects.toThrow(/outside the storage root/);
      await expect(storage.open(images[0])).rejects.toThrow(/outside the storage root/);
      await swap(storageDir, 'directory');
      expect(await readWhole(await reader.read(images[0]))).toBe('inside 0');
    } finally {
      reader.close?.();
    }
  });

  /**
   * A process of its own flips `a` as fast as it can while an export reads, holding each state
   * for about half a millisecond, and says how many times it flipped when told to stop (leaving
   * `a` as it found it). `swap`: `a` is a real directory, renamed away and replaced by a symlink
   * to `outside`, and back (as an attacker with a shell would; `a` is briefly missing). `retarget`:
   * `a` is a symlink, atomically replaced by one to `outside` and back to the real directory
   * inside the root (`a_real`), so it never goes missing and exports can complete.
   */
  async function startFlipping(
    storageDir: string,
    mode: 'swap' | 'retarget',
  ): Promise<{ stop(): Promise<number> }> {
    const script = `
      const fs = require('node:fs');
      const [mode, a, outside] = process.argv.slice(1);
      const pause = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0.5);
      const point = (target) => { fs.symlinkSync(target, a + '.next'); fs.renameSync(a + '.next', a); };
      let flips = 0, stopping = false;
      process.on('message', () => (stopping = true));
      process.send('flipping');
      (function flip() {
        for (let i = 0; i < 20 && !stopping; i++) {
          if (mode === 'swap') { fs.renameSync(a, a + '_real'); fs.symlinkSync(outside, a); }
          else point(outside);
          pause();
          if (mode === 'swap') { fs.unlinkSync(a); fs.renameSync(a + '_real', a); }
          else point('a_real');
          pause();
          flips++;
        }
        if (stopping) process.send(flips, () => process.exit(0));
        else setImmediate(flip);
      })();`;
    const a = path.join(storageDir, 'a');
    const child = spawn(process.execPath, ['-e', script, mode, a, outside], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('error', reject);
    });
    return {
      stop: () =>
        new Promise<number>((resolve, reject) => {
          child.once('message', (flips) => resolve(flips as number));
          child.once('exit', (code) => code !== 0 && reject(new Error(`flipper exited ${code}`)));
          child.send('stop');
        }),
    };
  }

  it.each([
    ['through its directory handle', false],
    ['by path (systems without /proc)', true],
  ])(
    'ConfinedFiles %s: 3,000 opens while the directory flips never open a file outside the root',
    async (_way, byPath) => {
      const storageDir = await storageWithDirectory(`opens-${byPath}`, 1);
      const files = new ConfinedFiles(
        { root: storageDir, realRoot: realpathSync(storageDir), allowHardLinks: false },
        { byPath },
      );
      const file = path.join(storageDir, 'a', '0.bin');
      const outcomes = new Set<string>();
      const flipper = await startFlipping(storageDir, 'swap');
      try {
        for (let i = 0; i < 3000; i++) {
          const opened = files.open(file);
          if ('problem' in opened) {
            outcomes.add(opened.problem.replace(/ \/.*/, ''));
          } else {
            const bytes = Buffer.alloc(opened.info.size);
            readSync(opened.fd, bytes, 0, bytes.length, 0);
            closeSync(opened.fd);
            outcomes.add(bytes.toString());
          }
          // Every few opens the directory is proven afresh, as a reading thread does per group.
          if (i % 8 === 7) files.forget();
          await new Promise(setImmediate);
        }
      } finally {
        files.forget();
        await flipper.stop();
      }
      expect([...outcomes].some((o) => o.includes(SECRET))).toBe(false);
      expect(outcomes).toContain('inside 0');
      expect([...outcomes].filter((o) => o !== 'inside 0')).not.toHaveLength(0);
    },
  );

  async function archiveText(format: 'tar' | 'zip', file: string): Promise<string> {
    if (format === 'tar') return (await tarEntries(file)).map(([, bytes]) => bytes).join('\n');
    const directory = await unzipper.Open.file(file);
    const texts: string[] = [];
    for (const entry of directory.files) texts.push((await entry.buffer()).toString());
    return texts.join('\n');
  }

  it.each([
    ['tar', 'swap'],
    ['zip', 'swap'],
    ['tar', 'retarget'],
    ['zip', 'retarget'],
  ] as const)(
    '%s, directory flipped by %s between inside the root and a directory outside it throughout exports of 4,000 files: no completed archive holds an outside byte',
    async (format, mode) => {
      const files = 4000;
      const storageDir = await storageWithDirectory(`flipping-${format}-${mode}`, files);
      if (mode === 'retarget') {
        await rename(path.join(storageDir, 'a'), path.join(storageDir, 'a_real'));
        await symlink('a_real', path.join(storageDir, 'a'));
      }
      const service = new ExportJobService(ds, {
        outputDir: path.join(root, `out-${format}-${mode}`),
        storage: new LocalDirectoryStorage(storageDir),
        progressIntervalMs: 0,
      });
      const { user, crawlJob } = await makeOwnedCrawlJob(ds);
      await db.query(
        `INSERT INTO images (crawl_job_id, original_url, filename, storage_url, file_size)
         SELECT $1, 'https://example.com/' || n, n || '.bin', 'a/' || n || '.bin', 8
           FROM generate_series(0, $2 - 1) AS n`,
        [crawlJob.id, files],
      );
      for (let round = 0; round < 3; round++) {
        const flipper = await startFlipping(storageDir, mode);
        let done;
        try {
          done = await runExport(service, { userId: user.id, crawlJobId: crawlJob.id }, format);
        } finally {
          expect(await flipper.stop()).toBeGreaterThan(0);
        }
        if (done.status === 'completed') {
          const text = await archiveText(format, service.filePath(done));
          // Counted rather than matched: a failure names how many, not 4,000 lines of text.
          expect(text.split(SECRET).length - 1).toBe(0);
          expect(text.split('inside ').length - 1).toBe(files);
        } else {
          expect(done.errorMessage).toMatch(/image \d+: (file not found|resolves to .*outside)/);
        }
      }
    },
  );

  describe('hard links', () => {
    let storageDir: string;
    const images = [{ id: 7, storageUrl: 'linked.bin' }];

    beforeAll(async () => {
      storageDir = path.join(root, 'hard-links');
      await mkdir(storageDir);
      const secret = path.join(outside, 'hard-linked-secret.txt');
      await writeFile(secret, SECRET);
      await link(secret, path.join(storageDir, 'linked.bin'));
    });

    it('a file with another link (here to a file outside the root) is refused on every path', async () => {
      const storage = new LocalDirectoryStorage(storageDir);
      const reader = storage.reader();
      try {
        expect(() => reader.read(images[0])).toThrow(
          /^image 7: has 2 hard links, .*allowHardLinks/,
        );
        await expect(readLaidOut(reader, images)).rejects.toThrow(/has 2 hard links/);
      } finally {
        reader.close?.();
      }
      await expect(storage.open(images[0])).rejects.toThrow(/has 2 hard links/);
    });

    it('an export with a hard-linked file fails naming it, and leaves no archive', async () => {
      const { user, crawlJob } = await makeOwnedCrawlJob(ds);
      await db.query(
        `INSERT INTO images (crawl_job_id, original_url, filename, storage_url, file_size)
         VALUES ($1, 'https://example.com/l', 'l.bin', 'linked.bin', 23)`,
        [crawlJob.id],
      );
      const outputDir = path.join(root, 'out-links');
      const service = new ExportJobService(ds, {
        outputDir,
        storage: new LocalDirectoryStorage(storageDir),
      });
      const done = await runExport(service, { userId: user.id, crawlJobId: crawlJob.id }, 'tar');
      expect(done.status).toBe('failed');
      expect(done.errorMessage).toMatch(/image \d+: has 2 hard links/);
      expect(await readdir(outputDir).catch(() => [])).toEqual([]);
    });

    it('allowHardLinks reads them, for storage that links files on purpose', async () => {
      const storage = new LocalDirectoryStorage(storageDir, { allowHardLinks: true });
      const reader = storage.reader();
      try {
        expect(await readWhole(await reader.read(images[0]))).toBe(SECRET);
        expect(await readLaidOut(reader, images)).toBe(SECRET);
      } finally {
        reader.close?.();
      }
      const chunks: Buffer[] = [];
      for await (const chunk of await storage.open(images[0])) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe(SECRET);
      expect(await readFile(path.join(storageDir, 'linked.bin'), 'utf8')).toBe(SECRET);
    });
  });
});
