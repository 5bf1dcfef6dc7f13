import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { ImageRepository } from '../../src/repositories';
import { ExportWriter, LocalDirectoryDestination } from '../../src/services';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import type { ExportFormat } from '../../src/entities/value-sets';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * Every stop ends: an export aborted at any moment (before, during or after the manifest, in the
 * middle of the files) ends within a second for every format, with its snapshot transaction
 * closed and no `.part` file left.
 */
describe('an export stopped at any moment', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let crawlJobId: number;
  let storage: LocalDirectoryStorage;

  beforeAll(async () => {
    db = await createTestDatabase('export_abort');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-export-abort-'));
    const storageDir = path.join(root, 'storage');
    ({
      crawlJob: { id: crawlJobId },
    } = await makeOwnedCrawlJob(ds));
    await mkdir(path.join(storageDir, `job-${crawlJobId}`), { recursive: true });
    // Enough files that an export takes a while: 3,000 of 4-12 KiB.
    const keys: string[] = [];
    for (let i = 0; i < 3_000; i++) {
      const key = `job-${crawlJobId}/${i}.jpg`;
      await writeFile(path.join(storageDir, key), randomBytes(4096 + (i % 3) * 4096));
      keys.push(key);
    }
    await db.query(
      `INSERT INTO images (crawl_job_id, original_url, filename, storage_url, file_size)
       SELECT $1, 'https://example.com/' || n, 'img_' || n || '.jpg', k, 4096
         FROM unnest($2::text[]) WITH ORDINALITY AS f(k, n) ORDER BY n`,
      [crawlJobId, keys],
    );
    storage = new LocalDirectoryStorage(storageDir);
  });
  afterAll(async () => {
    await db?.drop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const formats: ExportFormat[] = ['tar', 'zip', 'csv', 'jsonl'];
  const delays = [0, 2, 5, 10, 20, 40, 80, 150, 250];
  it.each(formats)(
    '%s: ends within a second of the abort, closing its snapshot, leaving no file',
    async (format) => {
      const writer = new ExportWriter(new ImageRepository(ds), { storage, progressIntervalMs: 0 });
      for (const delay of delays) {
        const out = path.join(root, `out-${format}-${delay}`);
        const destination = new LocalDirectoryDestination(out);
        const controller = new AbortController();
        const writing = writer.write(
          { id: 1_000 + delay, crawlJobId, format },
          destination,
          new Date(Date.now() + 3_600_000),
          undefined,
          controller.signal,
        );
        const settled = writing.then(
          () => 'completed',
          () => 'failed',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
        controller.abort(new Error('stopped'));
        const abortedAt = Date.now();
        const outcome = await Promise.race([
          settled,
          new Promise((resolve) => setTimeout(() => resolve('still running'), 5_000)),
        ]);
        expect({ delay, outcome }).not.toEqual({ delay, outcome: 'still running' });
        expect(Date.now() - abortedAt).toBeLessThan(1_000);
        // No transaction left open, no .part file left behind.
        // (A connection given up as broken is closed a moment later: allow the server a second.)
        let idle = 0;
        for (let i = 0; i < 20; i++) {
          const rows = await db.query(
            `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
          );
          idle = rows.length;
          if (idle === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect({ delay, idle }).toEqual({ delay, idle: 0 });
        const left = await readdir(out).catch(() => [] as string[]);
        expect({ delay, left: left.filter((name) => name.endsWith('.part')) }).toEqual({
          delay,
          left: [],
        });
      }
    },
  );
});
