import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { buildLegacyDatabase } from '../../src/testing/legacy-builder';
import { isLockTimeout, runPendingMigrations } from '../../src/migrator/migrator';
import { schemaDrift } from '../../src/inspect/schema-drift';
import { migrations } from '../../src/migrations';
import { recordedMigrations, schemaSnapshot } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const ALL = migrations.map((m) => new m().name!);

describe('a migration behind a long transaction', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let reader: Client;
  const savedTimeout = process.env.PIXCRAWLER_LOCK_TIMEOUT;

  beforeAll(async () => {
    process.env.PIXCRAWLER_LOCK_TIMEOUT = '100ms';
    db = await createTestDatabase('lock_retry');
    await buildLegacyDatabase(db.url, { images: 1_000 });
    dataSource = await db.connect();
    reader = new Client({ connectionString: db.url });
    await reader.connect();
  });
  afterAll(async () => {
    if (savedTimeout === undefined) delete process.env.PIXCRAWLER_LOCK_TIMEOUT;
    else process.env.PIXCRAWLER_LOCK_TIMEOUT = savedTimeout;
    await reader.end();
    await db.drop();
  });

  /** A transaction that has read images and keeps its lock: ALTER TABLE images must wait. */
  async function holdReadLock(): Promise<void> {
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM images');
  }

  it('gives up after the bounded attempts with lock_not_available, leaving the schema as it was', async () => {
    await holdReadLock();
    const before = await schemaSnapshot(db);
    const retries: number[] = [];
    const error = await runPendingMigrations(
      dataSource,
      { retrying: (attempt) => retries.push(attempt) },
      { baseline: true, lockAttempts: 2, retryDelayMs: 1 },
    ).catch((e: unknown) => e);
    await reader.query('ROLLBACK');

    expect(isLockTimeout(error)).toBe(true);
    expect(retries).toEqual([1]);
    expect(await schemaSnapshot(db)).toEqual(before);
    expect(await recordedMigrations(db)).toEqual([ALL[0]]);
  });

  it('retries with backoff once the lock is released, and completes', async () => {
    await holdReadLock();
    const retries: number[] = [];
    const applied = await runPendingMigrations(
      dataSource,
      {
        retrying: (attempt) => {
          retries.push(attempt);
          if (attempt === 1) void reader.query('ROLLBACK');
        },
      },
      { lockAttempts: 6, retryDelayMs: 20 },
    );

    expect(retries[0]).toBe(1);
    expect(applied).toEqual(ALL.slice(1));
    expect(await schemaDrift(dataSource)).toEqual([]);
  });
});
