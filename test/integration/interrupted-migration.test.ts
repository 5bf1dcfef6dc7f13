import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { buildLegacyDatabase } from '../../src/testing/legacy-builder';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { schemaDrift } from '../../src/inspect/schema-drift';
import { migrations } from '../../src/migrations';
import { runCli, spawnCli } from '../helpers/cli';
import {
  invalidIndexes,
  notValidConstraints,
  recordedMigrations,
  schemaSnapshot,
} from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const ALL = migrations.map((m) => new m().name!);

/** Polls a condition on the database until it holds (the test's own timeout bounds it). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('a failure inside a transactional migration', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('tx_failure');
    await buildLegacyDatabase(db.url, { images: 2_000 });
    dataSource = await db.connect();
  });
  afterAll(() => db.drop());

  it('leaves the schema as it was, and migrate completes once the conflict is gone', async () => {
    // A relation with the name of the last index JobTablesAndConstraints creates: the migration
    // fails at its very end, after renaming keys, adding constraints and creating tables.
    await db.query('CREATE TABLE "ix_export_job_status" (id int)');
    const before = await schemaSnapshot(db);

    await expect(runPendingMigrations(dataSource, {}, { baseline: true })).rejects.toThrow(
      /ix_export_job_status/,
    );

    expect(await recordedMigrations(db)).toEqual([ALL[0]]); // the baseline record only
    const after = await schemaSnapshot(db);
    expect(after).toEqual(before);
    expect(after.some((item) => item.includes('pk_profiles'))).toBe(false);

    await db.query('DROP TABLE "ix_export_job_status"');
    expect(await runPendingMigrations(dataSource)).toEqual(ALL.slice(1));
    expect(await schemaDrift(dataSource)).toEqual([]);
  });
});

describe('killing migrate during the concurrent index build', () => {
  let db: TestDatabase;
  let blocker: Client;

  beforeAll(async () => {
    db = await createTestDatabase('killed');
    await buildLegacyDatabase(db.url, { images: 5_000 });
    // Adopt the database and run up to the index build, so the kill hits that step.
    const upToConstraints = new DataSource(
      dataSourceOptions({ url: db.url, migrations: migrations.slice(0, 2) }),
    );
    await upToConstraints.initialize();
    await runPendingMigrations(upToConstraints, {}, { baseline: true });
    await upToConstraints.destroy();
    blocker = new Client({ connectionString: db.url });
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker.end();
    await db.drop();
  });

  it('leaves an INVALID index that the next migrate drops and rebuilds, ending clean', async () => {
    // An open write transaction on profiles: CREATE INDEX CONCURRENTLY records its index
    // (INVALID), then waits for this transaction to end before it builds it.
    await blocker.query('BEGIN');
    await blocker.query(`UPDATE profiles SET full_name = full_name WHERE id = (
      SELECT id FROM profiles ORDER BY id LIMIT 1)`);

    const run = spawnCli(['migrate'], db.url);
    let buildPid = 0;
    await until(async () => {
      const rows = await db.query<{ pid: number }>(
        `SELECT a.pid FROM pg_stat_activity a
          WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
            AND a.query LIKE 'CREATE UNIQUE INDEX CONCURRENTLY "ix_profiles_email"%'`,
      );
      buildPid = rows[0]?.pid ?? 0;
      return buildPid !== 0;
    });
    expect(await invalidIndexes(db)).toEqual(['ix_profiles_email']);

    run.child.kill('SIGKILL');
    expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // The server-side build outlives its client while it waits; a dropped connection or a
    // restart ends it, which is what leaves the INVALID index behind.
    await db.query('SELECT pg_terminate_backend($1)', [buildPid]);
    await until(
      async () =>
        (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [buildPid])).length === 0,
    );
    await blocker.query('ROLLBACK');
    expect(await invalidIndexes(db)).toEqual(['ix_profiles_email']);
    expect(await recordedMigrations(db)).toEqual(ALL.slice(0, 2));

    const rerun = await runCli(['migrate'], db.url);
    expect(rerun.code).toBe(0);
    expect(await recordedMigrations(db)).toEqual(ALL);
    expect(await invalidIndexes(db)).toEqual([]);
    expect(await notValidConstraints(db)).toEqual([]);
    const dataSource = await db.connect();
    expect(await schemaDrift(dataSource)).toEqual([]);
  });
});
