import { DataSource } from 'typeorm';
import { revertLastMigration, runPendingMigrations } from '../../src/migrator/migrator';
import {
  verifySchema,
  type Finding,
  type VerificationReport,
} from '../../src/inspect/schema-verifier';
import { runCli as runCliOn } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * `verify` on databases tampered with the way real ones drift: each test gets a freshly
 * migrated database, changes it behind the migrations' back, and checks what verify reports.
 */

let db: TestDatabase;
let dataSource: DataSource;

beforeEach(async () => {
  db = await createTestDatabase('verify');
  dataSource = await db.connect();
  await runPendingMigrations(dataSource);
});
afterEach(() => db.drop());

/** Findings as `severity table kind name` lines, for exact comparison. */
const summary = (report: VerificationReport, kinds?: Finding['kind'][]) =>
  report.findings
    .filter((f) => !kinds || kinds.includes(f.kind))
    .map((f) => `${f.severity} ${f.table ?? '-'} ${f.kind} ${f.name}`);
const tampered = (...statements: string[]) =>
  statements.reduce<Promise<unknown>>(
    (done, sql) => done.then(() => db.query(sql)),
    Promise.resolve(),
  );

describe('verify, on a tampered database', () => {
  it('reports a dropped index as an error, and TypeORM drift that would recreate it', async () => {
    await tampered('DROP INDEX ix_crawl_job_status');

    const report = await verifySchema(dataSource);

    expect(summary(report, ['index'])).toEqual(['error crawl_jobs index ix_crawl_job_status']);
    expect(report.findings.find((f) => f.kind === 'index')?.message).toBe(
      'missing (expected on (status))',
    );
    expect(report.drift).toEqual([expect.stringContaining('CREATE INDEX "ix_crawl_job_status"')]);
    expect([report.ok, report.errors, report.warnings]).toEqual([false, 2, 0]);
  });

  it('reports an index rebuilt with another access method', async () => {
    await tampered(
      'DROP INDEX ix_crawl_job_status',
      'CREATE INDEX ix_crawl_job_status ON crawl_jobs USING hash (status)',
    );

    const report = await verifySchema(dataSource);

    expect(
      report.findings
        .filter((f) => f.kind === 'index')
        .map((f) => `${f.severity} ${f.name}: ${f.message}`),
    ).toEqual(['error ix_crawl_job_status: is on (status) USING hash, expected on (status)']);
  });

  it('reports a partial index rebuilt with another predicate, which TypeORM (no predicates) misses', async () => {
    await tampered(
      'DROP INDEX ix_validation_job_pending',
      `CREATE INDEX ix_validation_job_pending ON validation_jobs (id) WHERE status IN ('pending', 'running')`,
    );

    const report = await verifySchema(dataSource);

    expect(
      report.findings
        .filter((f) => f.kind === 'index')
        .map((f) => `${f.severity} ${f.name}: ${f.message}`),
    ).toEqual([
      "error ix_validation_job_pending: is on (id) WHERE ((status)::text = ANY ((ARRAY['pending'::character varying, 'running'::character varying])::text[])), " +
        "expected on (id) WHERE ((status)::text = 'pending'::text)",
    ]);
    expect(report.drift).toEqual([]);
  });

  it('reports a foreign key re-added with another on-delete rule', async () => {
    await tampered(
      'ALTER TABLE activity_logs DROP CONSTRAINT fk_activity_logs_user_id',
      `ALTER TABLE activity_logs ADD CONSTRAINT fk_activity_logs_user_id
         FOREIGN KEY (user_id) REFERENCES profiles(id) ON DELETE CASCADE`,
    );

    const report = await verifySchema(dataSource);

    const fk = report.findings.filter((f) => f.kind === 'foreign key');
    expect(fk).toEqual([
      {
        severity: 'error',
        table: 'activity_logs',
        kind: 'foreign key',
        name: 'fk_activity_logs_user_id',
        message: 'is ON DELETE CASCADE, expected ON DELETE SET NULL',
      },
    ]);
    expect(report.ok).toBe(false);
  });

  it('reports a missing column as an error', async () => {
    await tampered('ALTER TABLE images DROP COLUMN format');

    const report = await verifySchema(dataSource);

    expect(summary(report, ['column'])).toEqual(['error images column format']);
    expect(report.findings.find((f) => f.kind === 'column')?.message).toBe(
      'missing (expected character varying(10))',
    );
    expect(report.ok).toBe(false);
  });

  it('reports a dropped column together with the check that went with it, and still compares the other checks', async () => {
    await tampered(
      'ALTER TABLE images DROP COLUMN width',
      'ALTER TABLE images DROP CONSTRAINT ck_images_height',
      'ALTER TABLE images ADD CONSTRAINT ck_images_height CHECK (height > 0)',
    );

    const report = await verifySchema(dataSource);

    expect(summary(report, ['column', 'check'])).toEqual([
      'error images column width',
      'error images check ck_images_height',
      'error images check ck_images_width',
    ]);
  });

  it('reports a changed type, nullability and default of a column', async () => {
    await tampered(
      'ALTER TABLE projects ALTER COLUMN name TYPE varchar(200)',
      'ALTER TABLE projects ALTER COLUMN description SET NOT NULL',
      `ALTER TABLE projects ALTER COLUMN status SET DEFAULT 'archived'`,
    );

    const report = await verifySchema(dataSource);

    expect(
      report.findings.filter((f) => f.kind === 'column').map((f) => `${f.name} ${f.message}`),
    ).toEqual([
      'name type is character varying(200), expected character varying(100)',
      'description is NOT NULL, expected nullable',
      "status default is 'archived', expected 'active'",
    ]);
  });

  it('reports an extra index as a warning only, so verify still passes', async () => {
    await tampered('CREATE INDEX ix_images_filename ON images (filename)');

    const report = await verifySchema(dataSource);

    expect(summary(report)).toEqual([
      'warning images index ix_images_filename',
      // TypeORM's drift check would drop it; verify reports that as a warning too.
      'warning - drift DROP INDEX "public"."ix_images_filename"',
    ]);
    expect([report.ok, report.errors, report.warnings]).toEqual([true, 0, 2]);
  });

  it('reports columns and constraints the entities do not know as warnings, and leaves other tables alone', async () => {
    await tampered(
      'CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text)',
      'ALTER TABLE profiles ADD COLUMN nickname text',
      'ALTER TABLE profiles ADD CONSTRAINT profiles_nickname_key UNIQUE (nickname)',
      'ALTER TABLE images ADD CONSTRAINT ck_images_legacy CHECK (width < 100000)',
    );

    const report = await verifySchema(dataSource);

    expect(report.errors).toBe(0);
    expect(summary(report, ['table', 'column', 'unique constraint', 'check'])).toEqual([
      'warning images check ck_images_legacy',
      'warning profiles column nickname',
      'warning profiles unique constraint profiles_nickname_key',
    ]);
    // An application's own table is not the package's to judge: listed, not a finding, so
    // `verify --strict` passes beside it. The migrations table is not even listed.
    expect(report.findings.some((f) => f.table === 'legacy_notes')).toBe(false);
    expect(report.otherTables).toEqual(['legacy_notes']);
    expect(report.findings.some((f) => f.name === 'migrations')).toBe(false);
  });

  it('reports an INVALID index left by an interrupted concurrent build', async () => {
    // A real failed build: duplicates make CREATE UNIQUE INDEX CONCURRENTLY fail half way,
    // which leaves the index in the catalog, INVALID.
    await tampered(
      'DROP INDEX ix_profiles_email',
      `INSERT INTO profiles (id, email) VALUES
         ('6f1c1a52-3c7e-4b8e-9a57-0d7a2f2c9b11', 'twin@example.com'),
         ('6f1c1a52-3c7e-4b8e-9a57-0d7a2f2c9b12', 'twin@example.com')`,
    );
    await expect(
      db.query('CREATE UNIQUE INDEX CONCURRENTLY ix_profiles_email ON profiles (email)'),
    ).rejects.toMatchObject({ code: '23505' });

    const report = await verifySchema(dataSource);

    expect(summary(report)).toEqual(['error profiles index ix_profiles_email']);
    expect(report.findings[0].message).toMatch(/^is INVALID \(an interrupted CREATE INDEX/);
  });

  it('reports NOT VALID check and foreign key constraints', async () => {
    await tampered(
      'ALTER TABLE crawl_jobs DROP CONSTRAINT ck_crawl_jobs_progress',
      'ALTER TABLE crawl_jobs ADD CONSTRAINT ck_crawl_jobs_progress CHECK (progress BETWEEN 0 AND 100) NOT VALID',
      'ALTER TABLE images DROP CONSTRAINT fk_images_crawl_job_id',
      `ALTER TABLE images ADD CONSTRAINT fk_images_crawl_job_id FOREIGN KEY (crawl_job_id)
         REFERENCES crawl_jobs(id) ON DELETE CASCADE NOT VALID`,
    );

    const report = await verifySchema(dataSource);

    expect(summary(report)).toEqual([
      'error crawl_jobs check ck_crawl_jobs_progress',
      'error images foreign key fk_images_crawl_job_id',
    ]);
    for (const finding of report.findings) expect(finding.message).toMatch(/^is NOT VALID/);
  });

  it('reports a check whose rule differs from the entity, which TypeORM (names only) misses', async () => {
    await tampered(
      'ALTER TABLE projects DROP CONSTRAINT ck_projects_status',
      `ALTER TABLE projects ADD CONSTRAINT ck_projects_status CHECK (status IN ('active', 'archived'))`,
    );

    const report = await verifySchema(dataSource);

    expect(summary(report)).toEqual(['error projects check ck_projects_status']);
    expect(report.findings[0].message).toMatch(
      /^is CHECK .*'archived'.*, expected CHECK .*'deleted'/,
    );
    expect(report.drift).toEqual([]);
  });

  it('reports a missing table and a renamed primary key', async () => {
    await tampered(
      'DROP TABLE export_jobs',
      'ALTER TABLE images RENAME CONSTRAINT pk_images TO images_pkey',
    );

    const report = await verifySchema(dataSource);

    expect(summary(report, ['table', 'primary key'])).toEqual([
      'error export_jobs table export_jobs',
      'error images primary key pk_images',
    ]);
  });

  it('reports pending migrations by name', async () => {
    await revertLastMigration(dataSource);

    const report = await verifySchema(dataSource);

    expect(summary(report, ['migrations'])).toEqual([
      'error - migrations PendingJobIndexes1731542400004',
    ]);
  });
});

// ---- the CLI, end to end ----

/** The CLI on this test's database unless told otherwise. */
const runCli = (args: string[], url = db.url) => runCliOn(args, url);

describe('pixcrawler-db verify', () => {
  it('exits 1 naming every difference, and 0 once only warnings are left', async () => {
    await tampered(
      'DROP INDEX ix_crawl_job_status',
      'CREATE INDEX ix_images_filename ON images (filename)',
    );

    const failed = await runCli(['verify']);
    expect(failed.code).toBe(1);
    expect(failed.output).toContain(
      'ERROR  index ix_crawl_job_status: missing (expected on (status))',
    );
    expect(failed.output).toContain('WARN   index ix_images_filename: not in the entities');
    expect(failed.output).toContain('Verification FAILED: 2 errors, 2 warnings.');

    await tampered('CREATE INDEX ix_crawl_job_status ON crawl_jobs (status)');
    const passed = await runCli(['verify']);
    expect(passed.code).toBe(0);
    expect(passed.output).toContain('Verification passed with 2 warnings.');

    expect((await runCli(['verify', '--strict'])).code).toBe(1);
  });

  it('prints the database it uses with the password masked', async () => {
    const { output } = await runCli(['verify']);
    const url = new URL(db.url);
    expect(output).toContain(`Database: ${url.protocol}//${url.username}`);
    if (url.password) expect(output).not.toContain(`:${url.password}@`);
  });
});

describe('pixcrawler-db migrate --verify', () => {
  it('migrates an empty database and verifies it in one run, exiting 0', async () => {
    const empty = await createTestDatabase('verify_cli');
    try {
      const { code, output } = await runCli(['migrate', '--verify'], empty.url);
      expect(output).toContain('Applied 5 migration(s).');
      expect(output).toContain('Verification passed.');
      expect(code).toBe(0);
    } finally {
      await empty.drop();
    }
  });

  it('exits 1 when the schema it finds after migrating is wrong', async () => {
    await tampered('ALTER TABLE images DROP COLUMN format');
    const { code, output } = await runCli(['migrate', '--verify']);
    expect(output).toContain('Nothing to migrate: the database is up to date.');
    expect(output).toContain('ERROR  column format: missing');
    expect(code).toBe(1);
  });
});
