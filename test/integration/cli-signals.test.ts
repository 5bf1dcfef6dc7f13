import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { MIGRATION_LOCK_KEY } from '../../src/migrator/migration-lock';
import { migrations } from '../../src/migrations';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { buildLegacyDatabase } from '../../src/testing';
import { spawnCli, type CliRun } from '../helpers/cli';
import { recordedMigrations } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * SIGTERM and Ctrl-C mean what docs/operations.md says: a command waiting for the migration lock
 * stops waiting and applies nothing; a migrate stopped mid-chain lets the running migration end
 * and starts no other; a `preflight --fix` waiting for a row lock stops, changes nothing and
 * leaves no backup; the exit code is 130 every time.
 */

const ALL = migrations.map((m) => new m().name!);

async function until(what: () => Promise<boolean>, run: CliRun, label: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await what()) return;
    if (run.child.exitCode !== null) throw new Error(`exited before ${label}:\n${run.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never reached ${label}:\n${run.output()}`);
}

async function lockHolder(db: TestDatabase): Promise<Client> {
  const holder = new Client({ connectionString: db.url });
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  return holder;
}

describe('signals', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase('signals');
  });
  afterEach(() => db.drop());

  it.each([
    ['migrate', 'SIGTERM'],
    ['migrate', 'SIGINT'],
    ['revert', 'SIGTERM'],
  ] as const)(
    '%s waiting for the migration lock stops at %s, applies nothing and exits 130',
    async (command, signal) => {
      if (command === 'revert') await runPendingMigrations(await db.connect());
      const before = await recordedMigrations(db);
      const holder = await lockHolder(db);
      try {
        const run = spawnCli([command], db.url);
        await until(async () => run.output().includes('waiting for it'), run, 'the wait');
        run.child.kill(signal);
        const started = Date.now();
        const { code } = await run.exited;
        expect(code).toBe(130);
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(run.output()).toContain(`Interrupted (${signal}): stopping.`);
        expect(run.output()).not.toMatch(/^\s+at /m);
      } finally {
        await holder.end();
      }
      // The lock is free now: nothing may happen late.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await recordedMigrations(db)).toEqual(before);
    },
  );

  it('migrate stopped mid-chain ends the running migration and starts no other', async () => {
    // An old snapshot keeps IndexExistingTables' concurrent builds waiting.
    const blocker = new Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await blocker.query('SELECT 1');
    const run = spawnCli(['migrate'], db.url);
    try {
      await until(
        async () =>
          (
            await db.query(
              `SELECT 1 FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE 'CREATE%INDEX CONCURRENTLY%'
                  AND wait_event_type IS NOT NULL`,
            )
          ).length > 0,
        run,
        'a waiting index build',
      );
      run.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await blocker.query('COMMIT');
      await blocker.end();
    }
    const { code } = await run.exited;
    expect(code).toBe(130);
    const indexing = ALL.findIndex((name) => name.startsWith('IndexExistingTables'));
    expect(await recordedMigrations(db)).toEqual(ALL.slice(0, indexing + 1));
    // The next run carries on.
    const again = spawnCli(['migrate'], db.url);
    expect((await again.exited).code).toBe(0);
    expect(await recordedMigrations(db)).toEqual(ALL);
  });

  it('preflight --fix waiting for a row lock stops at SIGTERM, changes nothing, leaves no backup, exits 130', async () => {
    await buildLegacyDatabase(db.url, { images: 100, broken: 2 });
    const rows = async () =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM images'))[0].n;
    const before = await rows();
    // Another session holds every image row: the fix's FOR UPDATE waits for it.
    const holder = new Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM images FOR UPDATE');
    const backupDir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-signal-fix-'));
    try {
      const run = spawnCli(['preflight', '--fix', '--backup-dir', backupDir], db.url);
      await until(
        async () =>
          (
            await db.query(
              `SELECT 1 FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            )
          ).length > 0,
        run,
        'the fix waiting for a row lock',
      );
      run.child.kill('SIGTERM');
      const started = Date.now();
      const { code } = await run.exited;
      expect(code).toBe(130);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(run.output()).toContain('Interrupted (SIGTERM): stopping.');
      expect(run.output()).not.toMatch(/^\s+at /m);
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    // The lock is free now: nothing may happen late.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await rows()).toBe(before);
    expect(readdirSync(backupDir)).toEqual([]);
    rmSync(backupDir, { recursive: true, force: true });
  });
});
