import type { DataSource } from 'typeorm';
import { verifySchema } from '../../src/inspect/schema-verifier';
import { migrations } from '../../src/migrations';
import type { MigrationPlan } from '../../src/migrator/plan';
import { revertLastMigration, runPendingMigrations } from '../../src/migrator/migrator';
import { buildAlembicDatabase } from '../../src/testing/alembic-database-builder';
import { PIXCRAWLER_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import { runPreflight } from '../../src/upgrade/preflight';
import { runCli } from '../helpers/cli';
import {
  invalidIndexes,
  notValidConstraints,
  recordedMigrations,
  rowIds,
  schemaSnapshot,
} from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * The database PixCrawler's own operator guide produces: Alembic brought it to 001 (SPEC.md, "A
 * database that PixCrawler's own Alembic migration 001 built"), with rows in all seven tables and
 * a few that break the new rules. The whole operator path, as the CLI runs it.
 */

const ALL = migrations.map((m) => new m().name!);

/** The foreign keys Alembic made, under PostgreSQL's names, and the names SPEC gives them. */
const ALEMBIC_FOREIGN_KEYS: Record<string, string> = {
  projects_user_id_fkey: 'fk_projects_user_id',
  crawl_jobs_project_id_fkey: 'fk_crawl_jobs_project_id',
  images_crawl_job_id_fkey: 'fk_images_crawl_job_id',
  activity_logs_user_id_fkey: 'fk_activity_logs_user_id',
  validation_jobs_crawl_job_id_fkey: 'fk_validation_jobs_crawl_job_id',
  export_jobs_crawl_job_id_fkey: 'fk_export_jobs_crawl_job_id',
  export_jobs_user_id_fkey: 'fk_export_jobs_user_id',
};

/** Every foreign key of the seven tables: name, oid (a rename keeps it), validated. */
async function foreignKeys(db: TestDatabase) {
  const rows = await db.query<{ name: string; oid: string; valid: boolean }>(
    `SELECT conname AS name, oid::text AS oid, convalidated AS valid FROM pg_constraint
      WHERE contype = 'f' AND conrelid::regclass::text = ANY($1) ORDER BY conname`,
    [PIXCRAWLER_TABLE_NAMES],
  );
  return rows;
}

/** Everything `plan` must leave as it was: the schema, the recorded migrations, the files. */
async function catalogState(db: TestDatabase) {
  const [rows] = await db.query<{ digest: string }>(
    `SELECT md5(string_agg(relname || ':' || relfilenode, ',' ORDER BY relname)) AS digest
       FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
  );
  return { schema: await schemaSnapshot(db), relations: rows.digest };
}

const planOf = (output: string) =>
  (JSON.parse(output.slice(output.indexOf('\n{') + 1)) as { plan: MigrationPlan }).plan;

describe("adopting a database PixCrawler's Alembic 001 built", () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let planted: Record<string, number>;
  let idsBefore: Awaited<ReturnType<typeof rowIds>>;
  let metadataBefore: string;
  let foreignKeysBefore: Awaited<ReturnType<typeof foreignKeys>>;

  beforeAll(async () => {
    db = await createTestDatabase('alembic_adopt');
    ({ planted } = await buildAlembicDatabase(db.url, { images: 3_000, broken: 2 }));
    dataSource = await db.connect();
    foreignKeysBefore = await foreignKeys(db);
    const [row] = await db.query<{ digest: string }>(
      `SELECT md5(string_agg(id || ':' || coalesce(metadata_::text, 'null'), ',' ORDER BY id)) AS digest
         FROM activity_logs`,
    );
    metadataBefore = row.digest;
  });
  afterAll(() => db.drop());

  it('status and plan say what they found: Alembic at revision 001, not yet managed here', async () => {
    const status = await runCli(['status'], db.url);
    expect(status.code).toBe(0);
    expect(status.output).toContain('managed by Alembic at revision 001');
    expect(status.output).toContain('`pixcrawler-db migrate --baseline`');
    const json = await runCli(['status', '--json'], db.url);
    expect(JSON.parse(json.stdout)).toMatchObject({ origin: { kind: 'alembic', revision: '001' } });

    const refused = await runCli(['migrate'], db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('managed by Alembic at revision 001');
  });

  it('preflight finds the broken rows of all seven tables, job tables included', async () => {
    const report = await runPreflight(dataSource);
    const broken = Object.fromEntries(report.broken.map((r) => [r.rule.name, r.count]));
    expect(broken).toEqual(planted);
    expect(Object.keys(planted)).toEqual(
      expect.arrayContaining(['ck_validation_jobs_status', 'ck_export_jobs_format']),
    );
  });

  it('plan --baseline changes nothing, and says migrate would refuse while rows are broken', async () => {
    const before = await catalogState(db);
    const text = await runCli(['plan', '--baseline'], db.url);
    expect(text.code).toBe(1);
    expect(text.output).toContain('Nothing has been changed.');
    expect(text.output).toContain('preflight --fix');
    expect(await catalogState(db)).toEqual(before);
  });

  it('preflight --fix repairs every broken row, job tables included, and backs them up', async () => {
    idsBefore = await rowIds(db, PIXCRAWLER_TABLE_NAMES);
    const fixed = await runCli(['preflight', '--fix', '--backup-dir', `/tmp/${db.name}`], db.url);
    expect(fixed.code).toBe(0);
    expect((await runPreflight(dataSource)).broken).toEqual([]);
    // Repairs change values; no row goes (Alembic's keys left no orphans to delete).
    expect(await rowIds(db, PIXCRAWLER_TABLE_NAMES)).toEqual(idsBefore);
    const [job] = await db.query<{ status: string; format: string }>(
      `SELECT status, format FROM export_jobs WHERE status NOT IN ('pending', 'running', 'completed', 'cancelled')
          OR format = 'zip' ORDER BY id DESC LIMIT 1`,
    );
    expect(job).toBeDefined();
  });

  it('plan --baseline lists every step with its lock, renames instead of rebuilding, and changes nothing', async () => {
    const before = await catalogState(db);
    const text = await runCli(['plan', '--baseline'], db.url);
    expect(text.code).toBe(0);
    expect(text.output).toContain('managed by Alembic at revision 001');
    expect(text.output).toMatch(/Taken as they are.*ix_project_user_id/);
    expect(text.output).toContain('activity_logs.metadata_: renamed metadata (catalog only');
    expect(text.output).toContain('profiles.ix_profiles_email: a plain index where SPEC');
    expect(text.output).toMatch(/export_jobs\.file_size integer → bigint: REWRITES export_jobs/);
    expect(text.output).toMatch(
      /crawl_jobs\.ix_crawl_jobs_project_id: an index SPEC does not name; ix_crawl_job_project_status serves the same lookups/,
    );
    expect(text.output).toContain(
      "alembic_version: Alembic's revision record, kept exactly as it is",
    );
    expect(text.output).not.toContain('Refused');

    const json = await runCli(['plan', '--baseline', '--json'], db.url);
    const plan = planOf(json.output);
    expect(plan.origin).toEqual({ kind: 'alembic', revision: '001' });
    expect(plan.migrations.map((m) => m.name)).toEqual(['baseline', ...ALL]);
    const steps = plan.migrations.flatMap((m) => m.steps);
    const statements = steps.map((s) => s.statement.replace(/\s+/g, ' '));
    expect(steps.every((s) => s.recognised)).toBe(true);
    // The foreign keys are renamed, never added again nor validated again (no scan of images).
    for (const [from, to] of Object.entries(ALEMBIC_FOREIGN_KEYS)) {
      expect(statements).toContainEqual(
        expect.stringContaining(`RENAME CONSTRAINT "${from}" TO "${to}"`),
      );
      expect(statements.some((s) => s.includes(`ADD CONSTRAINT "${to}"`))).toBe(false);
      expect(statements.some((s) => s.includes(`VALIDATE CONSTRAINT "${to}"`))).toBe(false);
    }
    // The checks are new: added NOT VALID, then validated without blocking writes.
    expect(statements).toContainEqual(
      expect.stringMatching(/ADD CONSTRAINT "ck_export_jobs_format" CHECK .* NOT VALID$/),
    );
    const validate = steps.find((s) =>
      s.statement.includes('VALIDATE CONSTRAINT "ck_export_jobs_format"'),
    );
    expect(validate?.locks).toEqual([
      expect.objectContaining({ table: 'export_jobs', mode: 'SHARE UPDATE EXCLUSIVE' }),
    ]);
    // SPEC's indexes already there are not built again; only the unique email index is.
    const builds = statements.filter((s) => s.startsWith('CREATE'));
    expect(builds).toEqual([
      expect.stringContaining('CREATE UNIQUE INDEX CONCURRENTLY "ix_profiles_email_swap"'),
      expect.stringContaining('CREATE INDEX CONCURRENTLY "ix_validation_job_pending"'),
      expect.stringContaining('CREATE INDEX CONCURRENTLY "ix_export_job_pending"'),
    ]);
    // The one rewrite, with the table's size.
    const widen = steps.find((s) => s.statement.includes('TYPE bigint'))!;
    expect(widen).toMatchObject({ rewrites: true });
    expect(widen.locks).toEqual([
      expect.objectContaining({ table: 'export_jobs', mode: 'ACCESS EXCLUSIVE' }),
    ]);
    expect(widen.locks[0].bytes).toBeGreaterThan(0);
    expect(await catalogState(db)).toEqual(before);
  });

  it('migrate --baseline --verify adopts it: every row kept, keys renamed not rebuilt, alembic_version untouched', async () => {
    const migrated = await runCli(['migrate', '--baseline', '--verify'], db.url);
    expect(migrated.output).toContain('Renamed activity_logs.metadata_ to metadata');
    expect(migrated.output).toContain('Verification passed');
    expect(migrated.code).toBe(0);
    expect(await recordedMigrations(db)).toEqual(ALL);
    expect(await rowIds(db, PIXCRAWLER_TABLE_NAMES)).toEqual(idsBefore);
    expect(await db.query(`SELECT version_num FROM alembic_version`)).toEqual([
      { version_num: '001' },
    ]);
    const [row] = await db.query<{ digest: string }>(
      `SELECT md5(string_agg(id || ':' || coalesce(metadata::text, 'null'), ',' ORDER BY id)) AS digest
         FROM activity_logs`,
    );
    expect(row.digest).toBe(metadataBefore);

    // The same constraints (same oids), under SPEC's names, valid all along.
    const after = await foreignKeys(db);
    expect(after.map((fk) => fk.name)).toEqual(Object.values(ALEMBIC_FOREIGN_KEYS).sort());
    const oidOf = new Map(after.map((fk) => [fk.name, fk.oid]));
    for (const fk of foreignKeysBefore) {
      expect(oidOf.get(ALEMBIC_FOREIGN_KEYS[fk.name])).toBe(fk.oid);
    }
    expect(await notValidConstraints(db)).toEqual([]);
    expect(await invalidIndexes(db)).toEqual([]);
    const [fileSize] = await db.query<{ type: string }>(
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = 'export_jobs'::regclass AND attname = 'file_size'`,
    );
    expect(fileSize.type).toBe('bigint');
    // Left alone, and said so by verify as information, not an error.
    expect(
      await db.query(`SELECT 1 FROM pg_class WHERE relname = 'ix_crawl_jobs_project_id'`),
    ).toHaveLength(1);
    const report = await verifySchema(dataSource);
    expect(report.errors).toBe(0);
    // The one finding: the index SPEC leaves out (and the drift that would drop it), warnings.
    expect(report.findings.length).toBeGreaterThan(0);
    for (const finding of report.findings) {
      expect(`${finding.severity} ${finding.name}`).toMatch(/^warning .*ix_crawl_jobs_project_id/);
    }
    const verify = await runCli(['verify'], db.url);
    expect(verify.code).toBe(0);
    expect(verify.output).not.toContain('alembic_version');
  });

  it('deletes cascade as SPEC says, job tables included; an activity log keeps its row', async () => {
    const [owner] = await db.query<{ user_id: string }>(
      `SELECT p.user_id FROM projects p JOIN crawl_jobs j ON j.project_id = p.id
         JOIN export_jobs e ON e.crawl_job_id = j.id JOIN validation_jobs v ON v.crawl_job_id = j.id
        LIMIT 1`,
    );
    const [logs] = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM activity_logs WHERE user_id = $1',
      [owner.user_id],
    );
    await db.query('DELETE FROM profiles WHERE id = $1', [owner.user_id]);
    const [left] = await db.query<Record<string, string>>(
      `SELECT (SELECT count(*) FROM projects WHERE user_id = $1) AS projects,
              (SELECT count(*) FROM export_jobs WHERE user_id = $1) AS exports,
              (SELECT count(*) FROM crawl_jobs j LEFT JOIN projects p ON p.id = j.project_id
                WHERE p.id IS NULL) AS orphan_jobs,
              (SELECT count(*) FROM validation_jobs v LEFT JOIN crawl_jobs j ON j.id = v.crawl_job_id
                WHERE j.id IS NULL) AS orphan_validations,
              (SELECT count(*) FROM activity_logs WHERE user_id = $1) AS logs`,
      [owner.user_id],
    );
    expect(left).toEqual({
      projects: '0',
      exports: '0',
      orphan_jobs: '0',
      orphan_validations: '0',
      logs: '0',
    });
    const [nulled] = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM activity_logs WHERE user_id IS NULL',
    );
    expect(Number(nulled.n)).toBeGreaterThanOrEqual(Number(logs.n));
  });

  it('a second migrate is a no-op', async () => {
    const again = await runCli(['migrate', '--baseline'], db.url);
    expect(again.code).toBe(0);
    expect(again.output).toContain('Nothing to migrate');
  });

  it('reverts step by step to what Alembic made, rows and foreign keys kept, then adopts again', async () => {
    const jobs = await rowIds(db, ['validation_jobs', 'export_jobs']);
    // (The library's revert, which the CLI runs: the CLI's own path is tested with the last one.)
    for (let i = 0; i < ALL.length - 1; i++) await revertLastMigration(dataSource);
    expect(await recordedMigrations(db)).toEqual([ALL[0]]);
    // The job tables hold rows: kept, with the foreign keys Alembic made under their names again.
    expect(await rowIds(db, ['validation_jobs', 'export_jobs'])).toEqual(jobs);
    const reverted = await foreignKeys(db);
    expect(reverted.map((fk) => fk.name)).toEqual(Object.keys(ALEMBIC_FOREIGN_KEYS).sort());
    expect(reverted.every((fk) => fk.valid)).toBe(true);
    const snapshot = await schemaSnapshot(db);
    expect(snapshot.some((item) => item.includes('ck_export_jobs_format'))).toBe(false);
    expect(snapshot).toContainEqual(expect.stringContaining('constraint profiles_email_key'));
    expect(await db.query(`SELECT version_num FROM alembic_version`)).toEqual([
      { version_num: '001' },
    ]);
    const refused = await runCli(['revert'], db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('hold data');

    const again = await runCli(['migrate', '--verify'], db.url);
    expect(again.output).toContain('Verification passed');
    expect(again.code).toBe(0);
    expect(await recordedMigrations(db)).toEqual(ALL);
    expect(await notValidConstraints(db)).toEqual([]);
  });
});

describe('a later Alembic revision', () => {
  it('is judged by what its seven tables hold, and the revision is named', async () => {
    const db = await createTestDatabase('alembic_later');
    try {
      await buildAlembicDatabase(db.url, { images: 200, revision: 'f379add8683c' });
      await db.query(`CREATE TABLE simple_flows (id serial PRIMARY KEY, name text)`);
      const plan = await runCli(['plan', '--baseline'], db.url);
      expect(plan.code).toBe(0);
      expect(plan.output).toContain('managed by Alembic at revision f379add8683c');
      expect(plan.output).toContain('simple_flows');
      const dataSource = await db.connect();
      await runPendingMigrations(dataSource, {}, { baseline: true });
      expect((await verifySchema(dataSource)).errors).toBe(0);
      const status = await runCli(['status'], db.url);
      expect(status.output).toContain('alembic_version still says f379add8683c');
    } finally {
      await db.drop();
    }
  });

  it('a widening over the rewrite limit is refused until --allow-rewrite', async () => {
    const db = await createTestDatabase('alembic_rewrite');
    try {
      await buildAlembicDatabase(db.url, { images: 200, exportJobs: 50 });
      const before = await schemaSnapshot(db);
      const refused = await runCli(['migrate', '--baseline', '--rewrite-limit-rows', '1'], db.url);
      expect(refused.code).toBe(1);
      expect(refused.output).toContain('~50 rows');
      expect(refused.output).toContain('over the limit of 1 rows');
      expect(refused.output).toContain('--allow-rewrite');
      expect(await schemaSnapshot(db)).toEqual(before);
      const allowed = await runCli(
        ['migrate', '--baseline', '--verify', '--rewrite-limit-rows', '1', '--allow-rewrite'],
        db.url,
      );
      expect(allowed.code).toBe(0);
    } finally {
      await db.drop();
    }
  });
});

describe('the ix_profiles_email swap, interrupted', () => {
  // Killed after the unique index was built under its temporary name, before or after the plain
  // one was dropped: the next migrate finishes the swap, and uniqueness held throughout.
  it.each([
    ['before the plain index was dropped', false],
    ['after the plain index was dropped', true],
  ])('%s: the next migrate finishes it', async (_, dropped) => {
    const db = await createTestDatabase('alembic_swap');
    try {
      await buildAlembicDatabase(db.url, { images: 200 });
      await db.query(`CREATE UNIQUE INDEX "ix_profiles_email_swap" ON "profiles" ("email")`);
      if (dropped) await db.query(`DROP INDEX "ix_profiles_email"`);
      const migrated = await runCli(['migrate', '--baseline', '--verify'], db.url);
      expect(migrated.output).toContain('Verification passed');
      expect(migrated.code).toBe(0);
      const indexes = await db.query<{ name: string; unique: boolean }>(
        `SELECT c.relname AS name, i.indisunique AS unique FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = 'profiles'::regclass AND NOT i.indisprimary ORDER BY 1`,
      );
      expect(indexes).toEqual([{ name: 'ix_profiles_email', unique: true }]);
    } finally {
      await db.drop();
    }
  });
});
