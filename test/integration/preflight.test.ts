import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { buildLegacyDatabase, type LegacyBuildResult } from '../../src/testing/legacy-builder';
import { LEGACY_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { refusalOf } from '../helpers/refusal';
import { fixPreflightViolations, runPreflight, SAFE_VALUES } from '../../src/upgrade/preflight';
import { schemaDrift } from '../../src/inspect/schema-drift';
import { JOB_STATUSES, PROFILE_ROLES, PROJECT_STATUSES } from '../../src/entities/value-sets';
import { runCli } from '../helpers/cli';
import {
  invalidIndexes,
  notValidConstraints,
  recordedMigrations,
  rowCounts,
  schemaSnapshot,
} from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const BROKEN = 3;

interface BackupLine {
  action: 'delete' | 'update';
  table: string;
  reason: string;
  row: Record<string, unknown> & { id: number | string };
}

describe('preflight on a legacy database with rows that break the new rules', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let built: LegacyBuildResult;
  let backupDir: string;

  beforeAll(async () => {
    db = await createTestDatabase('preflight');
    built = await buildLegacyDatabase(db.url, { images: 5_000, broken: BROKEN });
    dataSource = await db.connect();
    backupDir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-backup-'));
  });
  afterAll(async () => {
    await db.drop();
    rmSync(backupDir, { recursive: true, force: true });
  });

  it('counts exactly the broken rows the builder planted, rule by rule', async () => {
    const report = await runPreflight(dataSource);
    const counts = Object.fromEntries(report.broken.map((r) => [r.rule.name, r.count]));
    expect(counts).toEqual(built.planted);
    for (const result of report.broken) expect(result.sampleIds).toHaveLength(BROKEN);
  });

  it('the preflight command exits non-zero and names the broken rules', async () => {
    const { code, output } = await runCli(['preflight'], db.url);
    expect(code).toBe(1);
    expect(output).toContain('FAIL fk_images_crawl_job_id');
    expect(output).toContain('preflight --fix');
  });

  it('migrate --baseline refuses while rows break a rule, prints the ways out, and changes nothing', async () => {
    const before = await schemaSnapshot(db);
    const counts = await rowCounts(db, LEGACY_TABLE_NAMES);
    const { error, message } = await refusalOf(
      runPendingMigrations(dataSource, {}, { baseline: true }),
    );
    expect(error.reason).toBe('rows-break-constraints');
    expect(error.preflight?.broken.length).toBeGreaterThan(0);
    expect(message).toMatch(/preflight --fix/);
    expect(await schemaSnapshot(db)).toEqual(before);
    expect(await rowCounts(db, LEGACY_TABLE_NAMES)).toEqual(counts);
    expect(await recordedMigrations(db)).toEqual([]);
  });

  it('every safe value --fix uses is one its check allows', () => {
    expect(PROFILE_ROLES).toContain(SAFE_VALUES['profiles.role']);
    expect(PROJECT_STATUSES).toContain(SAFE_VALUES['projects.status']);
    expect(JOB_STATUSES).toContain(SAFE_VALUES['crawl_jobs.status']);
  });

  it('--fix backs up every row it deletes or changes, then repairs them in one transaction', async () => {
    const before = await rowCounts(db, LEGACY_TABLE_NAMES);
    const fixed = await fixPreflightViolations(dataSource, { backupDir });

    const backup: BackupLine[] = readFileSync(fixed.backupFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const deletedIn = (table: string) =>
      backup.filter((l) => l.action === 'delete' && l.table === table);
    // Orphans, plus what CASCADE would have taken with them: each orphan project owns a crawl
    // job and that job an image; each orphan crawl job owns an image.
    expect(fixed.deleted).toEqual({ images: 3 * BROKEN, crawl_jobs: 2 * BROKEN, projects: BROKEN });
    for (const [table, n] of Object.entries(fixed.deleted))
      expect(deletedIn(table)).toHaveLength(n);
    expect(fixed.updated).toEqual({
      ck_profiles_role: BROKEN,
      ck_projects_status: BROKEN,
      ck_crawl_jobs_total_images: BROKEN,
      ck_crawl_jobs_progress: BROKEN,
      ck_crawl_jobs_status: BROKEN,
      ck_images_width: BROKEN,
      fk_activity_logs_user_id: BROKEN,
    });
    expect(backup.filter((l) => l.action === 'update')).toHaveLength(7 * BROKEN);
    expect(fixed.manual).toEqual([]);

    // The backup holds whole rows as they were: enough to put each one back by hand.
    const progress = backup.filter((l) => l.reason === 'ck_crawl_jobs_progress');
    expect(progress.map((l) => l.row.progress).sort()).toEqual([-5, 150, 150]);
    const orphanLog = backup.find((l) => l.reason === 'fk_activity_logs_user_id')!;
    expect(orphanLog.row.user_id).toMatch(/^ffffffff-/);

    const after = await rowCounts(db, LEGACY_TABLE_NAMES);
    expect(after).toEqual({
      ...before,
      projects: before.projects - BROKEN,
      crawl_jobs: before.crawl_jobs - 2 * BROKEN,
      images: before.images - 3 * BROKEN,
    });
    const [clamped] = await db.query<{ lo: number; hi: number }>(
      'SELECT min(progress) AS lo, max(progress) AS hi FROM crawl_jobs',
    );
    expect(clamped).toEqual({ lo: 0, hi: 100 });
    const roles = await db.query<{ role: string }>('SELECT DISTINCT role FROM profiles ORDER BY 1');
    for (const { role } of roles) expect(PROFILE_ROLES).toContain(role);
    const [nulled] = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM activity_logs WHERE id = ANY($1) AND user_id IS NULL`,
      [backup.filter((l) => l.table === 'activity_logs').map((l) => l.row.id)],
    );
    expect(Number(nulled.n)).toBe(BROKEN);
    expect((await runPreflight(dataSource)).broken).toEqual([]);
  });

  it('migrate --baseline then succeeds, with no drift and nothing left invalid', async () => {
    await runPendingMigrations(dataSource, {}, { baseline: true });
    expect(await schemaDrift(dataSource)).toEqual([]);
    expect(await invalidIndexes(db)).toEqual([]);
    expect(await notValidConstraints(db)).toEqual([]);
  });
});
