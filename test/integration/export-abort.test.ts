import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import type { DataSource } from 'typeorm';
import { ImageRepository } from '../../src/repositories';
import {
  BlobContainerDestination,
  ExportJobService,
  ExportWriter,
  LocalDirectoryDestination,
  type ExportDestination,
} from '../../src/services';
import { JobWorker } from '../../src/services/jobs/worker';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import type { ExportFormat } from '../../src/entities/value-sets';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * Every stop ends: an export aborted at any moment (before, during or after the manifest, in the
 * middle of the files, mid-upload) ends within a second for every format and destination (a
 * local directory, an Azure Blob container on Azurite), with its snapshot transaction closed and
 * no `.part` file or blob left; a worker stopped with no grace period mid-export resolves its
 * stop() and leaves nothing running.
 */
describe('an export stopped at any moment', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let root: string;
  let crawlJobId: number;
  let userId: string;
  let storage: LocalDirectoryStorage;
  let azurite: Azurite;
  let container: ContainerClient;

  beforeAll(async () => {
    db = await createTestDatabase('export_abort');
    await db.migrate();
    ds = await db.connect();
    root = await mkdtemp(path.join(tmpdir(), 'pixcrawler-export-abort-'));
    const storageDir = path.join(root, 'storage');
    ({
      crawlJob: { id: crawlJobId },
      user: { id: userId },
    } = await makeOwnedCrawlJob(ds));
    azurite = await startAzurite();
    container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'exports',
    );
    await container.create();
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
    await azurite?.stop();
    await db?.drop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** No transaction left open (a connection given up as broken closes a moment later). */
  async function idleInTransaction(): Promise<number> {
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
    return idle;
  }

  /** A destination of each kind, its own directory or prefix per case. */
  function destinationFor(kind: 'local' | 'blob', label: string): ExportDestination {
    return kind === 'local'
      ? new LocalDirectoryDestination(path.join(root, `out-${label}`))
      : new BlobContainerDestination(container, { prefix: `${label}/` });
  }

  /** Files or committed blobs left under the destination: none may be an export's. */
  async function leftovers(destination: ExportDestination): Promise<string[]> {
    return (await destination.list().catch(() => [] as string[])).filter((name) =>
      name.startsWith('export-'),
    );
  }

  const formats: ExportFormat[] = ['tar', 'zip', 'csv', 'jsonl'];
  const delays = [0, 2, 5, 10, 20, 40, 80, 150, 250];
  const cases = formats.flatMap((format) => [
    [format, 'local'] as const,
    [format, 'blob'] as const,
  ]);
  it.each(cases)(
    '%s to a %s destination: ends within a second of the abort, closing its snapshot, leaving no file',
    async (format, kind) => {
      const writer = new ExportWriter(new ImageRepository(ds), { storage, progressIntervalMs: 0 });
      for (const delay of delays) {
        const destination = destinationFor(kind, `${format}-${kind}-${delay}`);
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
        expect({ delay, idle: await idleInTransaction() }).toEqual({ delay, idle: 0 });
        // A stopped export leaves nothing; one that completed first keeps its file (no .part).
        const left = (await leftovers(destination)).filter(
          (name) => outcome !== 'completed' || name.endsWith('.part'),
        );
        expect({ delay, left }).toEqual({ delay, left: [] });
      }
    },
  );

  it.each(['local', 'blob'] as const)(
    'a worker stopped with no grace period mid-export (to a %s destination): stop() resolves, nothing stays running',
    async (kind) => {
      for (const delay of [0, 20, 80]) {
        const destination = destinationFor(kind, `worker-${kind}-${delay}`);
        const service = new ExportJobService(ds, { destination, storage, progressIntervalMs: 0 });
        let started: (() => void) | undefined;
        const running = new Promise<void>((resolve) => (started = resolve));
        const worker = new JobWorker(ds, [service.jobs], {
          gracePeriodMs: 0,
          pollIntervalMs: 3_600_000,
          events: { started: () => started?.() },
        });
        await worker.start();
        const job = await service.request(userId, {
          crawlJobId,
          name: `stopped ${delay}`,
          format: 'tar',
        });
        await running;
        await new Promise((resolve) => setTimeout(resolve, delay));
        const stopping = Date.now();
        const stopped = await Promise.race([
          worker.stop('test stop').then(() => 'stopped'),
          new Promise((resolve) => setTimeout(() => resolve('stop() still pending'), 10_000)),
        ]);
        expect({ delay, stopped }).toEqual({ delay, stopped: 'stopped' });
        expect(Date.now() - stopping).toBeLessThan(2_000);
        const [row] = await db.query<{ status: string }>(
          'SELECT status FROM export_jobs WHERE id = $1',
          [job.id],
        );
        expect(['failed', 'completed']).toContain(row.status);
        expect({ delay, idle: await idleInTransaction() }).toEqual({ delay, idle: 0 });
        if (row.status === 'failed') {
          expect({ delay, left: await leftovers(destination) }).toEqual({ delay, left: [] });
        }
      }
    },
  );
});
