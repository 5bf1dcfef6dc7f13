import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { buildLegacyDatabase } from '../../src/testing/legacy-builder';
import { LEGACY_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import {
  fixPreflightViolations,
  PreflightBackupError,
  restorePreflightBackup,
  runPreflight,
} from '../../src/upgrade/preflight';
import { runCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

type Snapshot = Map<string, string>;

interface BackupLine {
  action: 'delete' | 'update';
  table: string;
  row: { id: string | number };
}

/** Every row of the five tables, as `table:id` → its JSON. */
async function snapshot(db: TestDatabase): Promise<Snapshot> {
  const rows = new Map<string, string>();
  for (const table of LEGACY_TABLE_NAMES) {
    for (const row of await db.query<{ id: string; json: string }>(
      `SELECT id::text AS id, to_jsonb(t)::text AS json FROM ${table} t`,
    )) {
      rows.set(`${table}:${row.id}`, row.json);
    }
  }
  return rows;
}

/** Keys whose rows differ between two snapshots (changed, gone or new). */
function changedKeys(before: Snapshot, after: Snapshot): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}

const backupKeys = (file: string) =>
  new Set(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as BackupLine)
      .map((line) => `${line.table}:${line.row.id}`),
  );

describe('preflight --fix under concurrent writes, and --restore', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let backupDir: string;

  beforeAll(async () => {
    db = await createTestDatabase('preflight-fix-restore');
    await buildLegacyDatabase(db.url, { images: 400, broken: 2 });
    ds = await db.connect();
    backupDir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-fix-'));
  });
  afterAll(async () => {
    await db.drop();
    rmSync(backupDir, { recursive: true, force: true });
  });

  it('an unwritable --backup-dir refuses before anything changes, leaving no file', async () => {
    const before = await snapshot(db);
    // A directory that cannot be created: its parent is a file (chmod would not stop root).
    const blocker = path.join(backupDir, 'a-file');
    await writeFile(blocker, 'not a directory');
    const refusal = fixPreflightViolations(ds, { backupDir: path.join(blocker, 'backups') });
    await expect(refusal).rejects.toBeInstanceOf(PreflightBackupError);
    await expect(refusal).rejects.toMatchObject({ problem: 'backup-dir-not-writable' });
    expect(await snapshot(db)).toEqual(before);
    expect(await readdir(backupDir)).toEqual(['a-file']);
    const { code, output } = await runCli(
      ['preflight', '--fix', '--backup-dir', path.join(blocker, 'backups')],
      db.url,
    );
    expect(code).toBe(1);
    expect(output).toContain(`Cannot write the backup in ${path.join(blocker, 'backups')}`);
    expect(output).not.toMatch(/^\s+at /m);
    expect(await snapshot(db)).toEqual(before);
  });

  it('backs up every row it changes even when another session writes during the repair, and --restore puts them back', async () => {
    // Healthy rows another session will break while the fix is in its DELETE phase.
    const [{ id: jobId }] = await db.query<{ id: number }>(
      `SELECT id FROM crawl_jobs WHERE progress BETWEEN 0 AND 100 AND total_images >= 0
          AND status IN ('pending', 'running', 'completed') ORDER BY id LIMIT 1`,
    );
    const [{ id: imageId }] = await db.query<{ id: number }>(
      `SELECT i.id FROM images i JOIN crawl_jobs c ON c.id = i.crawl_job_id
        WHERE i.width >= 0 ORDER BY i.id LIMIT 1`,
    );
    const before = await snapshot(db);

    // The fix pauses at its first DELETE until the test lets it go (an advisory lock).
    await db.query(`CREATE FUNCTION pause_fix() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$`);
    await db.query(
      `CREATE TRIGGER pause_fix BEFORE DELETE ON images FOR EACH STATEMENT EXECUTE FUNCTION pause_fix()`,
    );
    const writer = new Client({ connectionString: db.url });
    await writer.connect();
    let fixed: Awaited<ReturnType<typeof fixPreflightViolations>>;
    try {
      await writer.query('BEGIN');
      await writer.query('SELECT pg_advisory_xact_lock(4242)');
      const fixing = fixPreflightViolations(ds, { backupDir });
      for (;;) {
        const [waiting] = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
        );
        if (Number(waiting.n) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Written and committed while the fix waits inside its transaction, past its backup.
      await writer.query('COMMIT');
      await db.query('UPDATE crawl_jobs SET progress = 777 WHERE id = $1', [jobId]);
      await db.query('UPDATE images SET width = -42 WHERE id = $1', [imageId]);
      fixed = await fixing;
    } finally {
      await writer.end();
      await db.query('DROP TRIGGER IF EXISTS pause_fix ON images');
      await db.query('DROP FUNCTION IF EXISTS pause_fix()');
    }

    const expectedWithoutFix = new Map(before);
    const concurrent = await snapshot(db);
    for (const key of [`crawl_jobs:${jobId}`, `images:${imageId}`]) {
      expectedWithoutFix.set(key, concurrent.get(key)!);
    }
    // The concurrent writes stand: the fix neither repaired nor backed them up...
    const [job] = await db.query<{ progress: number }>(
      'SELECT progress FROM crawl_jobs WHERE id = $1',
      [jobId],
    );
    const [image] = await db.query<{ width: number }>('SELECT width FROM images WHERE id = $1', [
      imageId,
    ]);
    expect(job.progress).toBe(777);
    expect(image.width).toBe(-42);
    // ...and every row the fix did change is in its backup.
    const inBackup = backupKeys(fixed.backupFile);
    const changed = changedKeys(expectedWithoutFix, concurrent);
    expect(changed.length).toBeGreaterThan(0);
    for (const key of changed) expect(inBackup).toContain(key);
    expect(inBackup).not.toContain(`crawl_jobs:${jobId}`);
    expect(inBackup).not.toContain(`images:${imageId}`);
    // Preflight still sees the two rows broken after the fix.
    const after = Object.fromEntries(
      (await runPreflight(ds)).broken.map((r) => [r.rule.name, r.count]),
    );
    expect(after).toEqual({ ck_crawl_jobs_progress: 1, ck_images_width: 1 });

    // --restore, through the CLI: back to the state before the fix (with the concurrent writes).
    const { code, output } = await runCli(['preflight', '--restore', fixed.backupFile], db.url);
    expect(output).toContain('inserted');
    expect(code).toBe(0);
    expect(changedKeys(expectedWithoutFix, await snapshot(db))).toEqual([]);
  });

  it('--restore refuses a backup it cannot apply, changing nothing', async () => {
    const fixed = await fixPreflightViolations(ds, { backupDir });
    const state = await snapshot(db);
    // The deleted rows exist again after one restore: a second one must refuse, whole.
    await restorePreflightBackup(ds, fixed.backupFile);
    const restored = await snapshot(db);
    await expect(restorePreflightBackup(ds, fixed.backupFile)).rejects.toMatchObject({
      problem: 'row-exists',
    });
    expect(await snapshot(db)).toEqual(restored);
    expect(state).not.toEqual(restored);
    await expect(
      restorePreflightBackup(ds, path.join(backupDir, 'nope.jsonl')),
    ).rejects.toMatchObject({
      problem: 'backup-unreadable',
    });
    const { code, output } = await runCli(['preflight', '--restore', __filename], db.url);
    expect(code).toBe(1);
    expect(output).toMatch(/line 1: not JSON/);
    expect(output).not.toMatch(/^\s+at /m);
  });
});
