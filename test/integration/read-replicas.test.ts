import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';
import { DataSource, type QueryRunner } from 'typeorm';
import { assertPrimary, StandbyServerError } from '../../src/connection/server-role';
import { withDatabase } from '../../src/connection/database-url';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { runPendingMigrations } from '../../src/migrator/migrator';
import type { PooledConnection } from '../../src/connection/read-routing';
import { ImageRepository } from '../../src/repositories/image.repository';
import { ActivityService } from '../../src/services/activity.service';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { ExportJobService, type ManifestRow } from '../../src/services/export-job.service';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import { ProfileService } from '../../src/services/profile.service';
import { ProjectService } from '../../src/services/project.service';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { createTestDatabase, type TestDatabase } from '../../src/testing/test-database';
import { runCli } from '../helpers/cli';
import { generateImages } from '../helpers/factories';
import { startStreamingReplica, type StreamingReplica } from '../helpers/streaming-replica';
import { PIXCRAWLER_TABLES } from '../helpers/sql-rows';

/**
 * The services on a DataSource built with TypeORM's `replication` option, against a real primary
 * and streaming replica. Which server ran what is read from each server's own statistics
 * (pg_stat_user_tables): a standby counts the scans of the queries it answers, and a write can
 * only have happened on the primary.
 */

const TABLES = PIXCRAWLER_TABLES;
type Table = (typeof TABLES)[number];
interface TableCounters {
  scans: number;
  tuplesRead: number;
  inserted: number;
}
type Counters = Record<Table, TableCounters>;

let replica: StreamingReplica;
let db: TestDatabase;
let ds: DataSource;
let outputDir: string;

/**
 * Per-table counters as one server sees them. Each pool has ONE connection (extra.max = 1), so
 * every statement of the DataSource on that server ran in the backend that reads them here:
 * pg_stat_force_next_flush() (PostgreSQL 15+) makes it publish its pending counts when the
 * statement ends, and the next statement reads them, with no waiting and no other backend's
 * late counts mixed in.
 */
async function counters(server: 'master' | 'slave'): Promise<Counters> {
  const runner: QueryRunner = ds.createQueryRunner(server);
  try {
    await runner.query('SELECT pg_stat_force_next_flush()');
    const rows: { relname: Table; scans: string; tuples_read: string; inserted: string }[] =
      await runner.query(
        `SELECT relname, seq_scan + coalesce(idx_scan, 0) AS scans,
                seq_tup_read + coalesce(idx_tup_fetch, 0) AS tuples_read, n_tup_ins AS inserted
           FROM pg_stat_user_tables WHERE relname = ANY($1::text[])`,
        [TABLES],
      );
    return Object.fromEntries(
      rows.map((r) => [
        r.relname,
        { scans: Number(r.scans), tuplesRead: Number(r.tuples_read), inserted: Number(r.inserted) },
      ]),
    ) as Counters;
  } finally {
    await runner.release();
  }
}

async function bothServers() {
  return { primary: await counters('master'), replica: await counters('slave') };
}

function delta(after: Counters, before: Counters, key: keyof TableCounters) {
  return Object.fromEntries(TABLES.map((t) => [t, after[t][key] - before[t][key]])) as Record<
    Table,
    number
  >;
}

/** One statement on the replica's `postgres` database, outside the DataSource. */
async function onReplicaServer(sql: string): Promise<void> {
  const client = new Client({ connectionString: replica.replicaUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  replica = await startStreamingReplica();
  db = await createTestDatabase({ serverUrl: replica.primaryUrl(), label: 'replicas' });
  await replica.caughtUp(); // the new database, before the DataSource connects to it there
  ds = new DataSource(
    dataSourceOptions({
      replication: {
        master: { url: db.url },
        slaves: [{ url: withDatabase(replica.replicaUrl(), db.name) }],
      },
      extra: { max: 1 },
    }),
  );
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  await replica.caughtUp();
  outputDir = await mkdtemp(path.join(tmpdir(), 'pixcrawler-replica-export-'));
}, 120_000);

afterAll(async () => {
  if (ds?.isInitialized) await ds.destroy();
  await db?.drop();
  await replica?.stop();
  if (outputDir) await rm(outputDir, { recursive: true, force: true });
});

/** A user with a project and a running crawl job of `images` images. */
async function userWithData(images: number) {
  const profiles = new ProfileService(ds);
  const projects = new ProjectService(ds);
  const crawlJobs = new CrawlJobService(ds);
  const user = await profiles.create({
    id: randomUUID(),
    email: `replica-${Math.random().toString(36).slice(2)}@example.com`,
  });
  const project = await projects.create(user.id, { name: 'Birds' });
  const crawlJob = await crawlJobs.create(user.id, {
    projectId: project.id,
    name: 'crawl',
    keywords: ['birds'],
    maxImages: 10_000,
  });
  await crawlJobs.start(user.id, crawlJob.id);
  for (let offset = 0; offset < images; offset += 1000) {
    await crawlJobs.ingestImages(
      crawlJob.id,
      generateImages(Math.min(1000, images - offset), `job${crawlJob.id}-${offset}`),
    );
  }
  return { user, project, crawlJob };
}

describe('services on a DataSource with a streaming replica', () => {
  it('runs every list and get call on the replica, and every write on the primary', async () => {
    const start = await bothServers();
    const { user, project, crawlJob } = await userWithData(10);
    const validations = new ValidationJobService(ds);
    const exports = new ExportJobService(ds, {
      outputDir,
      storage: new LocalDirectoryStorage(outputDir),
    });
    const validation = await validations.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'check',
      rules: { minWidth: 10 },
    });
    const exportJob = await exports.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'out',
      format: 'csv',
    });
    await replica.caughtUp();
    const written = await bothServers();

    // The writes: rows inserted on the primary; the replica only replayed them.
    expect(delta(written.primary, start.primary, 'inserted')).toEqual({
      profiles: 1,
      projects: 1,
      crawl_jobs: 1,
      images: 10,
      // project and crawl job created, crawl job started, validation and export requested
      activity_logs: 5,
      validation_jobs: 1,
      export_jobs: 1,
    });
    expect(Object.values(delta(written.replica, start.replica, 'inserted'))).toEqual(
      TABLES.map(() => 0),
    );

    // The reads.
    const projects = new ProjectService(ds);
    const crawlJobs = new CrawlJobService(ds);
    const activity = new ActivityService(ds);
    expect((await new ProfileService(ds).get(user.id)).email).toBe(user.email);
    expect((await projects.get(user.id, project.id)).name).toBe('Birds');
    expect((await projects.list(user.id)).map((p) => p.id)).toEqual([project.id]);
    expect((await crawlJobs.get(user.id, crawlJob.id)).totalImages).toBe(10);
    expect((await crawlJobs.listForProject(user.id, project.id)).map((j) => j.id)).toEqual([
      crawlJob.id,
    ]);
    expect((await validations.get(user.id, validation.id)).status).toBe('pending');
    expect(await validations.listForCrawlJob(user.id, crawlJob.id)).toHaveLength(1);
    expect((await exports.get(user.id, exportJob.id)).status).toBe('pending');
    expect(await exports.listMine(user.id)).toHaveLength(1);
    expect(await exports.listForCrawlJob(user.id, crawlJob.id)).toHaveLength(1);
    expect((await activity.recentForUser(user.id)).items).toHaveLength(5);
    expect((await activity.recent()).items.length).toBeGreaterThanOrEqual(5);
    expect(await new ImageRepository(ds).listByCrawlJob(crawlJob.id, { limit: 100 })).toHaveLength(
      10,
    );
    const read = await bothServers();

    const replicaScans = delta(read.replica, written.replica, 'scans');
    const primaryScans = delta(read.primary, written.primary, 'scans');
    for (const table of TABLES) {
      expect({ table, scansOnReplica: replicaScans[table] > 0 }).toEqual({
        table,
        scansOnReplica: true,
      });
    }
    expect(primaryScans).toEqual(Object.fromEntries(TABLES.map((t) => [t, 0])));
  });

  it('streams an export from the replica, complete and equal to the primary rows', async () => {
    const { user, crawlJob } = await userWithData(3000);
    const exports = new ExportJobService(ds, {
      outputDir,
      storage: new LocalDirectoryStorage(outputDir),
      batchSize: 500,
    });
    const requested = await exports.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'all',
      format: 'jsonl',
    });
    // No waiting for the replica here: the export itself waits until it has caught up.
    const before = await bothServers();
    const done = await exports.run(requested.id);
    const after = await bothServers();

    expect([done.status, done.exportedImages, done.totalImages]).toEqual(['completed', 3000, 3000]);
    const file = await readFile(exports.filePath(done), 'utf8');
    const exported = file
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ManifestRow);
    const onPrimary: ManifestRow[] = await db.query(
      `SELECT id, crawl_job_id, original_url, filename, storage_url, width, height, file_size, format
         FROM images WHERE crawl_job_id = $1 ORDER BY id`,
      [crawlJob.id],
    );
    expect(exported).toEqual(onPrimary);
    // The 3000 rows were read on the replica (nothing else reads images there).
    expect(delta(after.replica, before.replica, 'tuplesRead').images).toBeGreaterThanOrEqual(3000);
  });

  it('waits for a lagging replica before an export reads it, and reads the primary when it lags too long', async () => {
    const { crawlJob } = await userWithData(5);
    const images = new ImageRepository(ds);
    await replica.caughtUp();
    const standbyOf = async ([client, release]: PooledConnection) => {
      try {
        const { rows } = await client.query<{ standby: boolean; images: number }>(
          `SELECT pg_is_in_recovery() AS standby, count(*)::int AS images
             FROM images WHERE crawl_job_id = $1`,
          [crawlJob.id],
        );
        return rows[0];
      } finally {
        release();
      }
    };
    // Replay is paused and resumed on a connection of its own: the DataSource's one replica
    // connection is the reader's.
    const replay = (action: 'pause' | 'resume') =>
      onReplicaServer(`SELECT pg_wal_replay_${action}()`);

    expect(await standbyOf(await images.exportConnection())).toEqual({ standby: true, images: 5 });

    await replay('pause');
    try {
      await new CrawlJobService(ds).ingestImages(crawlJob.id, generateImages(7, 'late'));
      // The replica cannot catch up while replay is paused: after maxWaitMs the read moves to
      // the primary, which has all 12 images.
      expect(await standbyOf(await images.exportConnection({ maxWaitMs: 300 }))).toEqual({
        standby: false,
        images: 12,
      });
      // Asked for while replay is still paused: the reader waits, replay resumes, and the read
      // happens on the replica with all 12 images.
      const reader = images.exportConnection({ maxWaitMs: 60_000 });
      await replay('resume');
      expect(await standbyOf(await reader)).toEqual({ standby: true, images: 12 });
    } finally {
      await replay('resume');
    }
  });
});

describe('pixcrawler-db on a standby', () => {
  const onStandby = (...args: string[]) =>
    runCli(args, withDatabase(replica.replicaUrl(), db.name));

  it.each([
    ['migrate', 'running migrations'],
    ['revert', 'reverting a migration'],
    ['plan', 'planning migrations'],
    ['preflight --fix', 'preflight --fix'],
    ['preflight --restore backup.jsonl', 'preflight --restore'],
  ])('`%s` refuses, says why and what to do, and changes nothing', async (command, operation) => {
    const migrationsBefore = await db.query('SELECT name FROM migrations ORDER BY id');
    const { code, output } = await onStandby(...command.split(' '));

    expect(code).toBe(1);
    expect(output).toContain(
      `Refused (${operation}): database "${db.name}" is on a standby, a read replica in ` +
        'recovery, which is read-only. Nothing was changed. Point DATABASE_URL at the primary',
    );
    expect(await db.query('SELECT name FROM migrations ORDER BY id')).toEqual(migrationsBefore);
  });

  it('the library refuses too, with a typed error naming the database', async () => {
    const standby = new DataSource(
      dataSourceOptions({ url: withDatabase(replica.replicaUrl(), db.name) }),
    );
    await standby.initialize();
    try {
      const refused = await runPendingMigrations(standby).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(StandbyServerError);
      expect(refused).toMatchObject({ operation: 'running migrations', database: db.name });
      await expect(assertPrimary(ds, 'anything')).resolves.toBeUndefined();
    } finally {
      await standby.destroy();
    }
  });

  it('`verify`, `stats` and `status` run read-only on a standby', async () => {
    await replica.caughtUp();
    const verify = await onStandby('verify');
    expect(verify.code).toBe(0);
    expect(verify.output).toContain('Verification passed with 1 warning.');
    // A standby refuses even temporary tables, which spelling checks as PostgreSQL does needs.
    expect(verify.output).toContain(
      'check definitions and partial-index predicates not compared (only names, and whether an ' +
        'index is partial): cannot execute CREATE TABLE in a read-only transaction',
    );

    const stats = await onStandby('stats');
    expect(stats.code).toBe(0);
    expect(stats.output).toContain('This server is a standby (read replica)');
    expect(stats.output).toContain('ix_image_crawl_job_id');

    const status = await onStandby('status');
    expect(status.code).toBe(0);
    expect(status.output).toContain('Up to date: nothing pending.');
  });
});
