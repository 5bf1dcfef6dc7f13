import type { DataSource } from 'typeorm';
import { PendingJobIndexes1731542400004 } from '../../src/migrations/1731542400004-PendingJobIndexes';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { verifySchema } from '../../src/inspect/schema-verifier';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * The migration that adds the partial indexes of pending jobs runs outside a transaction
 * (CREATE INDEX CONCURRENTLY), so each of its steps must be safe to repeat, and a rerun must
 * repair what an interrupted build left.
 */
describe('PendingJobIndexes', () => {
  let db: TestDatabase;
  let ds: DataSource;
  const migration = new PendingJobIndexes1731542400004();

  /** Runs up() or down() on a connection of its own, outside any transaction, as the runner does. */
  async function run(step: 'up' | 'down') {
    const runner = ds.createQueryRunner();
    try {
      await migration[step](runner);
    } finally {
      await runner.release();
    }
  }

  const pendingIndexes = () =>
    db.query<{ name: string; valid: boolean; definition: string }>(
      `SELECT c.relname AS name, i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS definition
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname LIKE '%\\_pending' ORDER BY 1`,
    );

  beforeAll(async () => {
    db = await createTestDatabase('pending_ix');
    ds = await db.connect();
    await runPendingMigrations(ds);
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    await db.query(
      `INSERT INTO validation_jobs (crawl_job_id, name) SELECT $1, 'job ' || i FROM generate_series(1, 3) i`,
      [crawlJob.id],
    );
  });
  afterAll(() => db.drop());

  it('declares that it runs outside a transaction (CONCURRENTLY)', () => {
    expect(migration.transaction).toBe(false);
  });

  it('up() run again keeps the indexes and changes nothing', async () => {
    const before = await pendingIndexes();
    await run('up');
    expect(await pendingIndexes()).toEqual(before);
    expect(before.map((i) => [i.name, i.valid])).toEqual([
      ['ix_export_job_pending', true],
      ['ix_validation_job_pending', true],
    ]);
  });

  it('up() rebuilds an INVALID index an interrupted build left, with the right definition', async () => {
    // A concurrent build that fails (duplicate keys for a UNIQUE index) leaves its index INVALID
    // under the name, exactly as a killed build does.
    await db.query('DROP INDEX ix_validation_job_pending');
    await expect(
      db.query(
        `CREATE UNIQUE INDEX CONCURRENTLY ix_validation_job_pending ON validation_jobs (crawl_job_id) WHERE status = 'pending'`,
      ),
    ).rejects.toThrow(/could not create unique index/);
    expect(
      (await pendingIndexes()).find((i) => i.name === 'ix_validation_job_pending')?.valid,
    ).toBe(false);

    await run('up');

    const rebuilt = (await pendingIndexes()).find((i) => i.name === 'ix_validation_job_pending');
    expect(rebuilt).toEqual({
      name: 'ix_validation_job_pending',
      valid: true,
      definition: expect.stringMatching(
        /^CREATE INDEX ix_validation_job_pending ON public\.validation_jobs USING btree \(id\) WHERE \(\(status\)::text = 'pending'::text\)$/,
      ),
    });
    expect((await verifySchema(ds)).ok).toBe(true);
  });

  it('down() removes both indexes, and may run again', async () => {
    await run('down');
    expect(await pendingIndexes()).toEqual([]);
    await run('down');
    expect(await pendingIndexes()).toEqual([]);
    await run('up');
    expect((await pendingIndexes()).map((i) => i.name)).toEqual([
      'ix_export_job_pending',
      'ix_validation_job_pending',
    ]);
  });
});
