import { DataSource } from 'typeorm';
import { verifySchema } from '../../src/inspect/schema-verifier';
import { migrations } from '../../src/migrations';
import { planMigrations, type MigrationPlan } from '../../src/migrator/plan';
import { revertLastMigration, runPendingMigrations } from '../../src/migrator/migrator';
import { buildAlembicDatabase } from '../../src/testing/alembic-database-builder';
import { buildLegacyDatabase } from '../../src/testing/legacy-builder';
import { buildOrmDatabase, ORM_FOREIGN_KEYS } from '../../src/testing/orm-database-builder';
import { checkAdoption } from '../../src/upgrade/adoption';
import { runPreflight } from '../../src/upgrade/preflight';
import { Client } from 'pg';
import { runCli, spawnCli } from '../helpers/cli';
import { refusalOf } from '../helpers/refusal';
import { recordedMigrations, schemaSnapshot } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * Adopting the databases that exist: the ORM-made one (SPEC.md "Databases in the wild") and the
 * idealised legacy one, through the whole operator path, as the CLI runs it.
 */

const ALL = migrations.map((m) => new m().name!);

/** Everything `plan` must leave as it was: the schema, the recorded migrations, the rows. */
async function catalogState(db: TestDatabase) {
  const [rows] = await db.query<{ digest: string }>(
    `SELECT md5(string_agg(relname || ':' || relfilenode, ',' ORDER BY relname)) AS digest
       FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
  );
  return {
    schema: await schemaSnapshot(db),
    migrations: await recordedMigrations(db),
    relations: rows.digest,
  };
}

describe('plan changes nothing', () => {
  const cases: Array<[string, (db: TestDatabase) => Promise<unknown>, string[], number, string[]]> =
    [
      // A new database: the whole chain, each migration reading what the ones before it create.
      ['an empty database', async () => undefined, [], 0, ALL],
      // Broken rows: migrate would refuse (exit 1), and the plan still shows what it would run.
      [
        'a legacy database',
        (db) => buildLegacyDatabase(db.url, { images: 500, broken: 1 }),
        ['--baseline'],
        1,
        ALL, // nothing to convert: no baseline step
      ],
      [
        'an ORM-made database',
        (db) => buildOrmDatabase(db.url, { images: 500, broken: 1 }),
        ['--baseline'],
        1,
        ['baseline', ...ALL],
      ],
      [
        "a database PixCrawler's Alembic 001 built",
        (db) => buildAlembicDatabase(db.url, { images: 500, broken: 1 }),
        ['--baseline'],
        1,
        ['baseline', ...ALL], // metadata_ renamed in the baseline step
      ],
    ];
  it.each(cases)(
    'on %s: the catalog is identical before and after',
    async (_, build, flags, code, names) => {
      const db = await createTestDatabase('plan_nothing');
      try {
        await build(db);
        const before = await catalogState(db);
        const text = await runCli(['plan', ...flags], db.url);
        const json = await runCli(['plan', '--json', ...flags], db.url);
        expect(text.output).toContain('Nothing has been changed.');
        expect([text.code, json.code]).toEqual([code, code]);
        const { plan } = JSON.parse(json.output.slice(json.output.indexOf('\n{') + 1)) as {
          plan: MigrationPlan;
        };
        expect(plan.migrations.map((m) => m.name)).toEqual(names);
        const renames = plan.migrations
          .flatMap((m) => m.steps)
          .filter((s) => s.statement.includes('RENAME CONSTRAINT "profiles_pkey"'));
        expect(renames).toHaveLength(1);
        expect(await catalogState(db)).toEqual(before);
      } finally {
        await db.drop();
      }
    },
  );
});

describe('adopting an ORM-made database', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('orm_adopt');
    await buildOrmDatabase(db.url, { images: 3_000, broken: 2 });
    dataSource = await db.connect();
  });
  afterAll(() => db.drop());

  it('classifies every difference: timestamps and the ORM keys converted, extras left alone, nothing refused', async () => {
    const report = await checkAdoption(dataSource);
    const of = (action: string) =>
      report.entries
        .filter((entry) => entry.action === action)
        .map((entry) => `${entry.reason} ${entry.table}.${entry.object}`);
    expect(report.refusals).toEqual([]);
    expect(of('convert')).toEqual(
      expect.arrayContaining([
        'timestamp-without-time-zone activity_logs.timestamp',
        'timestamp-without-time-zone crawl_jobs.started_at',
        'unique-replaced-by-index profiles.profiles_email_unique',
        // The ORM's own index on projects(user_id) is SPEC's, under another name: renamed.
        'index-renamed projects.projects_user_id_idx',
        ...ORM_FOREIGN_KEYS.map((fk) => `foreign-key-replaced ${fk.table}.${fk.name}`),
      ]),
    );
    expect(of('leave')).toEqual(
      expect.arrayContaining([
        'extra-column profiles.stripe_customer_id',
        'extra-foreign-key projects.projects_team_id_teams_id_fk',
        'extra-table notifications.notifications',
        'foreign-key-into-table crawl_job_schedules.crawl_job_schedules_crawl_job_id_crawl_jobs_id_fk',
      ]),
    );
    expect(report.conversions.every((c) => !c.rewrites)).toBe(true);
  });

  it('plan names the ORM keys it drops, the conversions and their locks, and exits 1 while rows are broken', async () => {
    const plan = await planMigrations(dataSource, { baseline: true });
    expect(plan.refusal?.reason).toBe('rows-break-constraints');
    const steps = plan.migrations.flatMap((m) => m.steps.map((s) => ({ migration: m.name, ...s })));
    const conversion = steps.find((s) =>
      s.statement.startsWith('ALTER TABLE "activity_logs" ALTER COLUMN'),
    );
    expect(conversion).toMatchObject({
      migration: 'baseline',
      rewrites: false,
      scans: false,
      locks: [{ table: 'activity_logs', mode: 'ACCESS EXCLUSIVE' }],
    });
    expect(conversion!.locks[0].bytes).toBeGreaterThan(0);
    for (const fk of ORM_FOREIGN_KEYS) {
      const drop = steps.find(
        (s) => s.statement === `ALTER TABLE "${fk.table}" DROP CONSTRAINT "${fk.name}"`,
      );
      expect(drop?.locks.map((l) => `${l.table} ${l.mode}`)).toEqual([
        `${fk.table} ACCESS EXCLUSIVE`,
        `${fk.target} ACCESS EXCLUSIVE`,
      ]);
      const validate = steps.findIndex((s) =>
        s.statement.includes(`VALIDATE CONSTRAINT "fk_${fk.table}_${fk.column}"`),
      );
      expect(validate).toBeGreaterThan(-1);
      expect(steps.indexOf(drop!)).toBeGreaterThan(validate);
    }
    expect(
      steps.find((s) => s.statement.includes('CONCURRENTLY "ix_image_crawl_job_id"'))?.locks,
    ).toEqual([expect.objectContaining({ table: 'images', mode: 'SHARE UPDATE EXCLUSIVE' })]);
    expect(steps.every((s) => s.recognised)).toBe(true);
    expect((await runCli(['plan', '--baseline'], db.url)).code).toBe(1);
  });

  it('walks the operator path: preflight --fix, plan, migrate --baseline, verify passes, deletes cascade, values keep their meaning', async () => {
    const [before] = await db.query<{ at: string; file: string }>(
      `SELECT "timestamp"::text AS at, pg_relation_filenode('activity_logs')::text AS file
         FROM activity_logs WHERE id = 1`,
    );
    const refused = await runCli(['migrate', '--baseline'], db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('preflight --fix');

    const fixed = await runCli(['preflight', '--fix', '--backup-dir', `/tmp/${db.name}`], db.url);
    expect(fixed.code).toBe(0);
    expect((await runPreflight(dataSource)).broken).toEqual([]);

    const plan = await runCli(['plan', '--baseline'], db.url);
    expect(plan.code).toBe(0);
    expect(plan.output).toContain('catalog only, no rewrite');

    const migrated = await runCli(['migrate', '--baseline', '--verify'], db.url);
    expect(migrated.output).toContain('Converted the timestamps of');
    expect(migrated.output).toContain('Verification passed');
    expect(migrated.code).toBe(0);
    expect(await recordedMigrations(db)).toEqual(ALL);

    // Values keep their meaning: a UTC wall-clock time is that instant; no table was rewritten.
    const [after] = await db.query<{ at: string; file: string }>(
      `SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at,
              pg_relation_filenode('activity_logs')::text AS file
         FROM activity_logs WHERE id = 1`,
    );
    expect(after.at).toBe(before.at);
    expect(after.file).toBe(before.file);

    // Each FK column has exactly SPEC's foreign key: the ORM's are gone.
    const fks = await db.query<{ name: string }>(
      `SELECT conname AS name FROM pg_constraint
        WHERE contype = 'f' AND conrelid::regclass::text IN ('projects', 'crawl_jobs', 'images', 'activity_logs')
        ORDER BY 1`,
    );
    expect(fks.map((f) => f.name)).toEqual([
      'fk_activity_logs_user_id',
      'fk_crawl_jobs_project_id',
      'fk_images_crawl_job_id',
      'fk_projects_user_id',
      'projects_team_id_teams_id_fk',
    ]);
    const report = await verifySchema(dataSource);
    expect(report.errors).toBe(0);

    // Deleting a profile cascades down to its images (nothing of the web app's refers to them).
    await db.query(`DELETE FROM crawl_job_schedules`);
    await db.query(`DELETE FROM api_keys`);
    const [owner] = await db.query<{ user_id: string }>(
      `SELECT p.user_id FROM projects p JOIN crawl_jobs j ON j.project_id = p.id
         JOIN images i ON i.crawl_job_id = j.id LIMIT 1`,
    );
    await db.query('DELETE FROM profiles WHERE id = $1', [owner.user_id]);
    const [left] = await db.query<{ projects: string; images: string; logs: string }>(
      `SELECT (SELECT count(*) FROM projects WHERE user_id = $1) AS projects,
              (SELECT count(*) FROM images i JOIN crawl_jobs j ON j.id = i.crawl_job_id
                 JOIN projects p ON p.id = j.project_id WHERE p.user_id = $1) AS images,
              (SELECT count(*) FROM activity_logs WHERE user_id = $1) AS logs`,
      [owner.user_id],
    );
    expect(left).toEqual({ projects: '0', images: '0', logs: '0' });
  });

  it('reverts to the legacy shape step by step, and adopts again', async () => {
    for (let i = 0; i < ALL.length - 1; i++) await revertLastMigration(dataSource);
    expect(await recordedMigrations(db)).toEqual([ALL[0]]);
    const snapshot = await schemaSnapshot(db);
    expect(snapshot.some((item) => item.includes('fk_projects_user_id'))).toBe(false);
    expect(snapshot.some((item) => item.startsWith('table validation_jobs'))).toBe(false);
    await expect(revertLastMigration(dataSource)).rejects.toMatchObject({
      reason: 'revert-drops-data',
    });
    expect(await runPendingMigrations(dataSource)).toEqual(ALL.slice(1));
    expect((await verifySchema(dataSource)).errors).toBe(0);
  });
});

describe('timestamps in another zone', () => {
  it('refuse to rewrite unless asked, then keep the instants the zone gives them', async () => {
    const db = await createTestDatabase('orm_zone');
    try {
      await buildOrmDatabase(db.url, { images: 200 });
      const dataSource = await db.connect();
      const options = { baseline: true, legacyTimezone: 'Europe/Berlin' };
      const { error, message } = await refusalOf(runPendingMigrations(dataSource, {}, options));
      const refusal = error.refusal.reason === 'legacy-shape-mismatch' ? error.refusal : undefined;
      expect(refusal?.adoption.refusals.map((r) => r.reason)).toContain('rewrite-not-allowed');
      expect(message).toContain('--allow-rewrite');
      expect(await recordedMigrations(db)).toEqual([]);

      const plan = await planMigrations(dataSource, { ...options, allowRewrite: true });
      expect(plan.migrations[0].steps.every((s) => s.rewrites)).toBe(true);

      const [before] = await db.query<{ at: string }>(
        `SELECT "timestamp"::text AS at FROM activity_logs WHERE id = 1`,
      );
      await runPendingMigrations(dataSource, {}, { ...options, allowRewrite: true });
      const [after] = await db.query<{ at: string }>(
        `SELECT to_char("timestamp" AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD HH24:MI:SS') AS at
           FROM activity_logs WHERE id = 1`,
      );
      expect(after.at).toBe(before.at);
    } finally {
      await db.drop();
    }
  });
});

describe('verify and migrate tell the truth', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  beforeEach(async () => {
    db = await createTestDatabase('truth');
    dataSource = await db.connect();
    await runPendingMigrations(dataSource);
  });
  afterEach(() => db.drop());

  it('a second foreign key on an entity FK column is an error, whatever its rule', async () => {
    await db.query(
      `ALTER TABLE projects ADD CONSTRAINT projects_user_id_profiles_id_fk
         FOREIGN KEY (user_id) REFERENCES profiles(id) ON DELETE NO ACTION`,
    );
    const report = await verifySchema(dataSource);
    expect(report.ok).toBe(false);
    expect(
      report.findings
        .filter((f) => f.kind === 'foreign key')
        .map((f) => `${f.severity} ${f.table} ${f.name}`),
    ).toEqual(['error projects projects_user_id_profiles_id_fk']);
  });

  it('an interrupted revert: verify says how to repair, and migrate repairs it', async () => {
    // Revert down to IndexExistingTables, so that it is the last one applied.
    const indexing = ALL.findIndex((name) => name.startsWith('IndexExistingTables'));
    while ((await recordedMigrations(db)).length > indexing + 1) {
      await revertLastMigration(dataSource);
    }
    // A transaction on images: the revert's DROP INDEX CONCURRENTLY waits for it there, after
    // dropping the activity_logs indexes (it drops them in reverse order).
    const blocker = new Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM images LIMIT 1');
      const revert = spawnCli(['revert'], db.url);
      let pid = 0;
      while (pid === 0) {
        const rows = await db.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
              AND query LIKE 'DROP INDEX CONCURRENTLY IF EXISTS "ix_image_crawl_job_id"%'`,
        );
        pid = rows[0]?.pid ?? 0;
        if (pid === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      revert.child.kill('SIGKILL');
      await revert.exited;
      await db.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await blocker.end();
    }
    expect(await recordedMigrations(db)).toEqual(ALL.slice(0, indexing + 1));

    const report = await verifySchema(dataSource);
    const missing = report.findings.filter((f) => f.recordedBy === ALL[indexing]);
    // The two dropped, and the one whose drop was killed half way (left INVALID).
    expect(missing.map((f) => `${f.severity} ${f.name} ${f.repairedByMigrate}`).sort()).toEqual([
      'error ix_activity_log_timestamp true',
      'error ix_activity_log_user_id true',
      'error ix_image_crawl_job_id true',
    ]);
    const verified = await runCli(['verify'], db.url);
    expect(verified.output).toMatch(
      /ix_activity_log_timestamp: missing.*IndexExistingTables1731542400002 makes it and is recorded as applied.*run `pixcrawler-db migrate`/,
    );

    // plan shows the repair first: only what is missing is made again.
    const plan = await planMigrations(dataSource);
    expect(plan.migrations[0]).toMatchObject({ name: ALL[indexing], repair: true });
    const repair = plan.migrations[0].steps.map((step) => step.statement);
    expect(repair).toEqual(
      expect.arrayContaining([
        expect.stringContaining('INDEX CONCURRENTLY "ix_activity_log_timestamp"'),
        expect.stringContaining('INDEX CONCURRENTLY "ix_image_crawl_job_id"'),
      ]),
    );
    expect(repair.some((statement) => statement.includes('"ix_profiles_email" ON'))).toBe(false);

    const migrated = await runCli(['migrate', '--verify'], db.url);
    expect(migrated.output).toContain(`Repaired ${ALL[indexing]}`);
    expect(migrated.output).toContain('Verification passed');
    expect(migrated.code).toBe(0);
  });

  it('migrate refuses a database that records a migration this code does not know', async () => {
    await db.query(
      `INSERT INTO migrations ("timestamp", name) VALUES (1999999999999, 'FromTheFuture1999999999999')`,
    );
    const refusal = runPendingMigrations(dataSource);
    await expect(refusal).rejects.toMatchObject({ reason: 'unknown-migrations' });
    const cli = await runCli(['migrate'], db.url);
    expect(cli.code).toBe(1);
    expect(cli.output).toContain('FromTheFuture1999999999999');
    expect(cli.output).not.toContain('up to date');
  });
});

describe('adopting the legacy database through the CLI', () => {
  it('walks the same path: preflight --fix, plan, migrate --baseline --verify, cascading deletes, revert', async () => {
    const db = await createTestDatabase('legacy_path');
    try {
      await buildLegacyDatabase(db.url, { images: 2_000, broken: 2 });
      const status = await runCli(['status'], db.url);
      expect(status.output).toContain('but no migration is recorded');
      expect(status.output).toContain('`pixcrawler-db migrate --baseline`');
      expect(status.output).not.toContain('empty database');
      expect((await runCli(['migrate', '--baseline'], db.url)).code).toBe(1);
      expect(
        (await runCli(['preflight', '--fix', '--backup-dir', `/tmp/${db.name}`], db.url)).code,
      ).toBe(0);
      const plan = await runCli(['plan', '--baseline'], db.url);
      expect(plan.code).toBe(0);
      // The legacy shape exactly: only the renames every adoption makes, nothing left or refused.
      expect(plan.output).toContain('profiles.profiles_pkey: primary key renamed pk_profiles');
      expect(plan.output).not.toMatch(/Left alone|Refused|Baseline conversions/);
      const migrated = await runCli(['migrate', '--baseline', '--verify'], db.url);
      expect(migrated.output).toContain('Verification passed');
      expect(migrated.code).toBe(0);

      const [job] = await db.query<{ id: number }>(
        'SELECT crawl_job_id AS id FROM images ORDER BY id LIMIT 1',
      );
      await db.query('DELETE FROM crawl_jobs WHERE id = $1', [job.id]);
      const [left] = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM images WHERE crawl_job_id = $1',
        [job.id],
      );
      expect(left.n).toBe('0');

      for (let i = 0; i < ALL.length - 1; i++) {
        expect((await runCli(['revert'], db.url)).code).toBe(0);
      }
      expect(await recordedMigrations(db)).toEqual([ALL[0]]);
    } finally {
      await db.drop();
    }
  });
});
