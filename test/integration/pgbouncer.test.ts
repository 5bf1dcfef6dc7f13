import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { MigrationRefusedError } from '../../src/migrator/migration-refused-error';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { ImageRepository } from '../../src/repositories/image.repository';
import { JobWorker, type JobWorkerOptions } from '../../src/services/jobs/worker';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { runCli } from '../helpers/cli';
import { generateImages, makeOwnedCrawlJob } from '../helpers/factories';
import { startPgBouncer, type PgBouncer } from '../helpers/pgbouncer';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const HOUR = 3_600_000;

/**
 * Behind a real PgBouncer (Debian's package, started on a port of its own): in transaction mode
 * the migration lock would not hold and LISTEN hears nothing, so the migrator refuses and the
 * worker says so and polls; in session mode both work as on a direct connection.
 */
describe('behind PgBouncer', () => {
  let db: TestDatabase;
  let transactionPool: PgBouncer;
  let sessionPool: PgBouncer;

  beforeAll(async () => {
    db = await createTestDatabase('pgbouncer');
    transactionPool = await startPgBouncer(db.url, 'transaction');
    sessionPool = await startPgBouncer(db.url, 'session');
  });
  afterAll(async () => {
    await transactionPool?.stop();
    await sessionPool?.stop();
    await db?.drop();
  });

  const tablesInDatabase = async () =>
    (
      await db.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'`,
      )
    ).map((row) => row.name);
  const advisoryLocks = async () =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`,
      )
    )[0].n;

  describe('the migrator', () => {
    it('refuses a transaction-mode pooler, naming it, and changes nothing', async () => {
      const { code, output } = await runCli(['migrate'], transactionPool.url(db.name));
      expect(output).toMatch(
        /pooler in transaction mode \(PgBouncer with `pool_mode = transaction`/,
      );
      expect(output).toMatch(
        /(reached several server sessions \(backend pids \d+, \d+\)|another client was handed its server session \(backend pid \d+\))/,
      );
      expect(output).toMatch(/Nothing was changed/);
      expect(code).toBe(1);
      expect(await tablesInDatabase()).toEqual([]);
      expect(await advisoryLocks()).toBe(0);
    });

    it('two migrators at once through it are both refused: nothing runs twice, no lock leaks', async () => {
      const runs = await Promise.all(
        [1, 2].map(() => runCli(['migrate', '--json'], transactionPool.url(db.name))),
      );
      for (const { code, stdout } of runs) {
        expect(code).toBe(1);
        expect(JSON.parse(stdout)).toMatchObject({
          ok: false,
          refusal: { reason: 'transaction-pooling' },
        });
      }
      expect(await tablesInDatabase()).toEqual([]);
      expect(await advisoryLocks()).toBe(0);
    });

    it('the API refuses with a MigrationRefusedError the application can read', async () => {
      const ds = new DataSource(dataSourceOptions({ url: transactionPool.url(db.name) }));
      await ds.initialize();
      try {
        const refused = await runPendingMigrations(ds).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(MigrationRefusedError);
        expect((refused as MigrationRefusedError).refusal).toMatchObject({
          reason: 'transaction-pooling',
          backends: expect.any(Array),
        });
      } finally {
        await ds.destroy();
      }
      expect(await tablesInDatabase()).toEqual([]);
    });

    it('migrates through a session-mode pool, as on a direct connection', async () => {
      const { code, output } = await runCli(['migrate', '--verify'], sessionPool.url(db.name));
      expect(output).not.toMatch(/transaction mode/);
      expect(code).toBe(0);
      expect((await runCli(['status', '--check'], db.url)).code).toBe(0);
      expect(await advisoryLocks()).toBe(0);
    });
  });

  describe('the worker (the database migrated by the test above)', () => {
    let direct: DataSource;
    let userId: string;
    let crawlJobId: number;
    const workers: JobWorker[] = [];
    const sources: DataSource[] = [];

    beforeAll(async () => {
      direct = await db.connect();
      const owned = await makeOwnedCrawlJob(direct);
      userId = owned.user.id;
      crawlJobId = owned.crawlJob.id;
      await new ImageRepository(direct).ingest(crawlJobId, generateImages(5, 'pooled'));
    });
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((worker) => worker.stop('test over')));
      await Promise.all(sources.splice(0).map((ds) => ds.destroy()));
    });

    /** A worker whose queries go through the transaction-mode pool; `heard` tells what it said. */
    async function pooledWorker(options: JobWorkerOptions) {
      const ds = new DataSource(dataSourceOptions({ url: transactionPool.url(db.name) }));
      await ds.initialize();
      sources.push(ds);
      const said: string[] = [];
      const started: number[] = [];
      const worker = new JobWorker(ds, [new ValidationJobService(ds).jobs], {
        pollIntervalMs: HOUR,
        ...options,
        events: {
          listening: () => said.push('listening'),
          listenFailed: (ms) => said.push(`listen failed, polling every ${ms} ms`),
          started: (_kind, job) => started.push(job.id),
        },
      });
      workers.push(worker);
      await worker.start();
      return { said, started };
    }

    /** Requests a job and waits (up to 20 s) until the worker started it. */
    async function requestAndSeeStarted(started: number[]): Promise<void> {
      const job = await new ValidationJobService(direct).request(userId, {
        crawlJobId,
        name: 'through the pooler',
        rules: {},
      });
      const end = Date.now() + 20_000;
      while (!started.includes(job.id)) {
        if (Date.now() > end) throw new Error(`job ${job.id} never started`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }

    it('through the pooler alone: its own NOTIFY does not come back, it says so once and polls every second', async () => {
      const { said, started } = await pooledWorker({});
      expect(said).toEqual(['listen failed, polling every 1000 ms']);
      // The poll is set to an hour: only the short poll of a deaf worker can start this job.
      await requestAndSeeStarted(started);
      expect(said).toHaveLength(1);
    });

    it('with a direct listen URL: LISTEN is proven and a job starts on its notification', async () => {
      const { said, started } = await pooledWorker({ listenUrl: db.url });
      expect(said).toEqual(['listening']);
      // Polling every hour: the notification is what starts it.
      await requestAndSeeStarted(started);
    });

    it('work --listen-url with a malformed URL is a usage error that shows no password', async () => {
      const { code, output } = await runCli(
        ['work', '--listen-url', 'postgresql://u:s3cr@t/x@127.0.0.1:1/db'],
        transactionPool.url(db.name),
      );
      expect(code).toBe(2);
      expect(output).toMatch(
        /--listen-url \(postgresql:\/\/\*\*\*@127\.0\.0\.1:1\/db\) has an "@" after its host/,
      );
      expect(output).not.toContain('s3cr');
    });
  });
});
