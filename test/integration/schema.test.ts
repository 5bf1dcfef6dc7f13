import { DataSource } from 'typeorm';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { verifySchema } from '../../src/inspect/schema-verifier';
import {
  createActivityLog,
  createCrawlJob,
  createExportJob,
  createImage,
  createProfile,
  createProfileTree,
  createProject,
  createValidationJob,
} from '../helpers/sql-rows';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * The schema `migrate` builds on an empty database, against SPEC.md's lists written out by
 * hand, and the behaviour of its foreign keys and check constraints on real rows.
 */

const TABLES = [
  'activity_logs',
  'crawl_jobs',
  'export_jobs',
  'images',
  'profiles',
  'projects',
  'validation_jobs',
];

/** SPEC.md's column tables in PostgreSQL's spelling: `type [null] [= default as stored]`. */
const VARCHAR = (n: number) => `character varying(${n})`;
const TSTZ = 'timestamp with time zone';
const serial = (table: string) => `integer = nextval('${table}_id_seq'::regclass)`;
const text = (value: string, n: number) => `${VARCHAR(n)} = '${value}'::character varying`;
const STAMPS = { created_at: `${TSTZ} = now()`, updated_at: `${TSTZ} = now()` };

const COLUMNS: Record<string, Record<string, string>> = {
  profiles: {
    id: 'uuid',
    email: VARCHAR(255),
    full_name: `${VARCHAR(100)} null`,
    avatar_url: 'text null',
    role: text('user', 20),
    ...STAMPS,
  },
  projects: {
    id: serial('projects'),
    name: VARCHAR(100),
    description: 'text null',
    user_id: 'uuid',
    status: text('active', 20),
    ...STAMPS,
  },
  crawl_jobs: {
    id: serial('crawl_jobs'),
    project_id: 'integer',
    name: VARCHAR(100),
    keywords: 'jsonb',
    max_images: 'integer = 1000',
    status: text('pending', 20),
    progress: 'integer = 0',
    total_images: 'integer = 0',
    downloaded_images: 'integer = 0',
    valid_images: 'integer = 0',
    started_at: `${TSTZ} null`,
    completed_at: `${TSTZ} null`,
    total_chunks: 'integer = 0',
    active_chunks: 'integer = 0',
    completed_chunks: 'integer = 0',
    failed_chunks: 'integer = 0',
    task_ids: "jsonb = '[]'::jsonb",
    ...STAMPS,
  },
  images: {
    id: serial('images'),
    crawl_job_id: 'integer',
    original_url: 'text',
    filename: VARCHAR(255),
    storage_url: 'text null',
    width: 'integer null',
    height: 'integer null',
    file_size: 'integer null',
    format: `${VARCHAR(10)} null`,
  },
  activity_logs: {
    id: serial('activity_logs'),
    user_id: 'uuid null',
    action: 'text',
    resource_type: `${VARCHAR(50)} null`,
    resource_id: `${VARCHAR(50)} null`,
    metadata: 'jsonb null',
    timestamp: `${TSTZ} = now()`,
  },
  validation_jobs: {
    id: serial('validation_jobs'),
    crawl_job_id: 'integer',
    name: VARCHAR(100),
    status: text('pending', 20),
    progress: 'integer = 0',
    total_images: 'integer = 0',
    validated_images: 'integer = 0',
    invalid_images: 'integer = 0',
    validation_rules: "jsonb = '{}'::jsonb",
    started_at: `${TSTZ} null`,
    completed_at: `${TSTZ} null`,
    error_message: 'text null',
    ...STAMPS,
  },
  export_jobs: {
    id: serial('export_jobs'),
    crawl_job_id: 'integer',
    user_id: 'uuid',
    name: VARCHAR(100),
    status: text('pending', 20),
    progress: 'integer = 0',
    format: text('zip', 20),
    total_images: 'integer = 0',
    exported_images: 'integer = 0',
    file_size: 'bigint null',
    download_url: 'text null',
    export_options: "jsonb = '{}'::jsonb",
    started_at: `${TSTZ} null`,
    completed_at: `${TSTZ} null`,
    expires_at: `${TSTZ} null`,
    error_message: 'text null',
    ...STAMPS,
  },
};

const PRIMARY_KEYS = [
  'activity_logs.pk_activity_logs',
  'crawl_jobs.pk_crawl_jobs',
  'export_jobs.pk_export_jobs',
  'images.pk_images',
  'profiles.pk_profiles',
  'projects.pk_projects',
  'validation_jobs.pk_validation_jobs',
];

const INDEXES = [
  'activity_logs.ix_activity_log_timestamp (timestamp)',
  'activity_logs.ix_activity_log_user_id (user_id)',
  'crawl_jobs.ix_crawl_job_project_status (project_id, status)',
  'crawl_jobs.ix_crawl_job_status (status)',
  'export_jobs.ix_export_job_crawl_job_id (crawl_job_id)',
  "export_jobs.ix_export_job_pending (id) WHERE ((status)::text = 'pending'::text)",
  'export_jobs.ix_export_job_status (status)',
  'export_jobs.ix_export_job_user_id (user_id)',
  'images.ix_image_crawl_job_id (crawl_job_id)',
  'profiles.ix_profiles_email UNIQUE (email)',
  'projects.ix_project_user_id (user_id)',
  'validation_jobs.ix_validation_job_crawl_job_id (crawl_job_id)',
  "validation_jobs.ix_validation_job_pending (id) WHERE ((status)::text = 'pending'::text)",
  'validation_jobs.ix_validation_job_status (status)',
];

const FOREIGN_KEYS = [
  'activity_logs.fk_activity_logs_user_id (user_id) -> profiles ON DELETE SET NULL',
  'crawl_jobs.fk_crawl_jobs_project_id (project_id) -> projects ON DELETE CASCADE',
  'export_jobs.fk_export_jobs_crawl_job_id (crawl_job_id) -> crawl_jobs ON DELETE CASCADE',
  'export_jobs.fk_export_jobs_user_id (user_id) -> profiles ON DELETE CASCADE',
  'images.fk_images_crawl_job_id (crawl_job_id) -> crawl_jobs ON DELETE CASCADE',
  'projects.fk_projects_user_id (user_id) -> profiles ON DELETE CASCADE',
  'validation_jobs.fk_validation_jobs_crawl_job_id (crawl_job_id) -> crawl_jobs ON DELETE CASCADE',
];

/** Every check constraint, with a column and values that break it. */
const CHECKS: Record<string, [table: string, column: string, bad: unknown[]]> = {
  ck_profiles_role: ['profiles', 'role', ['superuser']],
  ck_projects_status: ['projects', 'status', ['paused']],
  ck_crawl_jobs_status: ['crawl_jobs', 'status', ['paused']],
  ck_crawl_jobs_progress: ['crawl_jobs', 'progress', [-1, 101]],
  ck_crawl_jobs_max_images: ['crawl_jobs', 'max_images', [-1]],
  ck_crawl_jobs_total_images: ['crawl_jobs', 'total_images', [-1]],
  ck_crawl_jobs_downloaded_images: ['crawl_jobs', 'downloaded_images', [-1]],
  ck_crawl_jobs_valid_images: ['crawl_jobs', 'valid_images', [-1]],
  ck_crawl_jobs_total_chunks: ['crawl_jobs', 'total_chunks', [-1]],
  ck_crawl_jobs_active_chunks: ['crawl_jobs', 'active_chunks', [-1]],
  ck_crawl_jobs_completed_chunks: ['crawl_jobs', 'completed_chunks', [-1]],
  ck_crawl_jobs_failed_chunks: ['crawl_jobs', 'failed_chunks', [-1]],
  ck_images_width: ['images', 'width', [-1]],
  ck_images_height: ['images', 'height', [-1]],
  ck_images_file_size: ['images', 'file_size', [-1]],
  ck_validation_jobs_status: ['validation_jobs', 'status', ['paused']],
  ck_validation_jobs_progress: ['validation_jobs', 'progress', [-1, 101]],
  ck_validation_jobs_total_images: ['validation_jobs', 'total_images', [-1]],
  ck_validation_jobs_validated_images: ['validation_jobs', 'validated_images', [-1]],
  ck_validation_jobs_invalid_images: ['validation_jobs', 'invalid_images', [-1]],
  ck_export_jobs_status: ['export_jobs', 'status', ['paused']],
  ck_export_jobs_format: ['export_jobs', 'format', ['rar']],
  ck_export_jobs_progress: ['export_jobs', 'progress', [-1, 101]],
  ck_export_jobs_total_images: ['export_jobs', 'total_images', [-1]],
  ck_export_jobs_exported_images: ['export_jobs', 'exported_images', [-1]],
  ck_export_jobs_file_size: ['export_jobs', 'file_size', [-1]],
};

let db: TestDatabase;
let dataSource: DataSource;

beforeAll(async () => {
  db = await createTestDatabase('schema');
  dataSource = await db.connect();
  await runPendingMigrations(dataSource);
});
afterAll(() => db.drop());

const count = async (table: string, where: string, params: unknown[]) =>
  Number(
    (await dataSource.query(`SELECT count(*) AS n FROM "${table}" WHERE ${where}`, params))[0].n,
  );

describe('the migrated schema', () => {
  it('passes verify with no errors and no warnings', async () => {
    const report = await verifySchema(dataSource);
    expect(report.findings).toEqual([]);
    expect([report.ok, report.errors, report.warnings, report.drift]).toEqual([true, 0, 0, []]);
  });

  it('has exactly the tables of SPEC.md, plus the migrations table', async () => {
    const rows = await db.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(rows.map((r) => r.name)).toEqual([...TABLES, 'migrations'].sort());
  });

  it('has exactly the columns of SPEC.md, with their types, nullability and defaults', async () => {
    const rows = await db.query<{ table: string; column: string; item: string }>(
      `SELECT c.relname AS table, a.attname AS column,
              format_type(a.atttypid, a.atttypmod)
              || CASE WHEN a.attnotnull THEN '' ELSE ' null' END
              || coalesce(' = ' || pg_get_expr(d.adbin, d.adrelid), '') AS item
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
          AND c.relname <> 'migrations' AND a.attnum > 0 AND NOT a.attisdropped`,
    );
    const actual: Record<string, Record<string, string>> = {};
    for (const row of rows) (actual[row.table] ??= {})[row.column] = row.item;
    expect(actual).toEqual(COLUMNS);
  });

  it('names every primary key pk_<table>', async () => {
    const rows = await db.query<{ item: string }>(
      `SELECT conrelid::regclass || '.' || conname AS item FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND contype = 'p'
          AND conrelid <> 'migrations'::regclass ORDER BY 1`,
    );
    expect(rows.map((r) => r.item)).toEqual(PRIMARY_KEYS);
  });

  it('has no generated hash name anywhere, not even on the migrations table', async () => {
    const rows = await db.query<{ name: string }>(
      `SELECT conname AS name FROM pg_constraint WHERE connamespace = 'public'::regnamespace
       UNION ALL
       SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`,
    );
    expect(
      rows.map((r) => r.name).filter((name) => /^(PK|FK|IDX|UQ|REL|CHK)_[0-9a-f]{8,}/.test(name)),
    ).toEqual([]);
    const [migrationsKey] = await db.query<{ name: string }>(
      `SELECT conname AS name FROM pg_constraint WHERE conrelid = 'migrations'::regclass AND contype = 'p'`,
    );
    expect(migrationsKey.name).toBe('pk_migrations');
  });

  it('has exactly the indexes of SPEC.md, with their columns, uniqueness and predicates', async () => {
    const rows = await db.query<{ item: string }>(
      `SELECT t.relname || '.' || c.relname || CASE WHEN i.indisunique THEN ' UNIQUE' ELSE '' END
              || ' (' || (SELECT string_agg(a.attname, ', ' ORDER BY k.n)
                            FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
              || ')' || COALESCE(' WHERE ' || pg_get_expr(i.indpred, i.indrelid), '') AS item
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relnamespace = 'public'::regnamespace AND NOT i.indisprimary
        ORDER BY 1`,
    );
    expect(rows.map((r) => r.item)).toEqual(INDEXES);
  });

  it('has exactly the foreign keys of SPEC.md, with their on-delete rules', async () => {
    const rows = await db.query<{ item: string }>(
      `SELECT conrelid::regclass || '.' || conname
              || ' (' || (SELECT string_agg(attname, ', ') FROM pg_attribute
                           WHERE attrelid = conrelid AND attnum = ANY (conkey)) || ') -> '
              || confrelid::regclass || ' ON DELETE '
              || CASE confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'
                                  WHEN 'r' THEN 'RESTRICT' WHEN 'a' THEN 'NO ACTION'
                                  ELSE 'SET DEFAULT' END AS item
         FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND contype = 'f' ORDER BY 1`,
    );
    expect(rows.map((r) => r.item)).toEqual(FOREIGN_KEYS);
  });

  it('has exactly the check constraints of SPEC.md, all validated', async () => {
    const rows = await db.query<{ name: string; validated: boolean }>(
      `SELECT conname AS name, convalidated AS validated FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND contype = 'c' ORDER BY 1`,
    );
    expect(rows.map((r) => r.name)).toEqual(Object.keys(CHECKS).sort());
    expect(rows.every((r) => r.validated)).toBe(true);
  });

  it('has no unique constraint besides the unique index on profiles.email', async () => {
    const rows = await db.query(
      `SELECT conname FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND contype = 'u'`,
    );
    expect(rows).toEqual([]);
  });
});

describe('on-delete rules, on real rows', () => {
  it('deleting a profile removes its projects, crawl jobs, images, validation and export jobs and keeps its activity logs with user_id null', async () => {
    const mine = await createProfileTree(dataSource);
    const other = await createProfileTree(dataSource);

    await dataSource.query('DELETE FROM profiles WHERE id = $1', [mine.userId]);

    expect(await count('projects', 'id = $1', [mine.projectId])).toBe(0);
    expect(await count('crawl_jobs', 'id = $1', [mine.crawlJobId])).toBe(0);
    expect(await count('images', 'id = $1', [mine.imageId])).toBe(0);
    expect(await count('validation_jobs', 'id = $1', [mine.validationJobId])).toBe(0);
    expect(await count('export_jobs', 'id = $1', [mine.exportJobId])).toBe(0);
    expect(
      await dataSource.query('SELECT user_id FROM activity_logs WHERE id = $1', [
        mine.activityLogId,
      ]),
    ).toEqual([{ user_id: null }]);

    // Nobody else's rows are touched.
    expect(await count('images', 'id = $1', [other.imageId])).toBe(1);
    expect(await count('export_jobs', 'id = $1', [other.exportJobId])).toBe(1);
    expect(await count('activity_logs', 'user_id = $1', [other.userId])).toBe(1);
  });

  it("deleting a profile removes the export jobs it requested on another user's crawl job, and keeps that crawl job", async () => {
    const owner = await createProfileTree(dataSource);
    const requester = await createProfile(dataSource);
    const exportJobId = await createExportJob(dataSource, owner.crawlJobId, requester);

    await dataSource.query('DELETE FROM profiles WHERE id = $1', [requester]);

    expect(await count('export_jobs', 'id = $1', [exportJobId])).toBe(0);
    expect(await count('crawl_jobs', 'id = $1', [owner.crawlJobId])).toBe(1);
    expect(await count('export_jobs', 'id = $1', [owner.exportJobId])).toBe(1);
  });

  it('deleting a project removes its crawl jobs and everything under them, and keeps its owner', async () => {
    const tree = await createProfileTree(dataSource);

    await dataSource.query('DELETE FROM projects WHERE id = $1', [tree.projectId]);

    expect(await count('crawl_jobs', 'id = $1', [tree.crawlJobId])).toBe(0);
    expect(await count('images', 'id = $1', [tree.imageId])).toBe(0);
    expect(await count('validation_jobs', 'id = $1', [tree.validationJobId])).toBe(0);
    expect(await count('export_jobs', 'id = $1', [tree.exportJobId])).toBe(0);
    expect(await count('profiles', 'id = $1', [tree.userId])).toBe(1);
  });

  it('deleting a crawl job removes its images, validation jobs and export jobs, and keeps its project and sibling jobs', async () => {
    const tree = await createProfileTree(dataSource);
    const sibling = await createCrawlJob(dataSource, tree.projectId);
    const siblingImage = await createImage(dataSource, sibling);

    await dataSource.query('DELETE FROM crawl_jobs WHERE id = $1', [tree.crawlJobId]);

    expect(await count('images', 'id = $1', [tree.imageId])).toBe(0);
    expect(await count('validation_jobs', 'id = $1', [tree.validationJobId])).toBe(0);
    expect(await count('export_jobs', 'id = $1', [tree.exportJobId])).toBe(0);
    expect(await count('projects', 'id = $1', [tree.projectId])).toBe(1);
    expect(await count('images', 'id = $1', [siblingImage])).toBe(1);
  });

  it('refuses rows whose parent does not exist', async () => {
    const project = await createProject(dataSource, await createProfile(dataSource));
    await expect(createCrawlJob(dataSource, project + 1_000_000)).rejects.toMatchObject({
      code: '23503',
      constraint: 'fk_crawl_jobs_project_id',
    });
    await expect(createImage(dataSource, 2_000_000)).rejects.toMatchObject({
      constraint: 'fk_images_crawl_job_id',
    });
    await expect(createValidationJob(dataSource, 2_000_000)).rejects.toMatchObject({
      constraint: 'fk_validation_jobs_crawl_job_id',
    });
    await expect(
      createActivityLog(dataSource, '00000000-0000-4000-8000-000000000000'),
    ).rejects.toMatchObject({ constraint: 'fk_activity_logs_user_id' });
  });
});

describe('check constraints, on real rows', () => {
  let ids: Record<string, number | string>;

  beforeAll(async () => {
    const tree = await createProfileTree(dataSource);
    ids = {
      profiles: tree.userId,
      projects: tree.projectId,
      crawl_jobs: tree.crawlJobId,
      images: tree.imageId,
      validation_jobs: tree.validationJobId,
      export_jobs: tree.exportJobId,
    };
  });

  it.each(
    Object.entries(CHECKS).flatMap(([name, [table, column, values]]) =>
      values.map((value) => [name, `${column} = ${JSON.stringify(value)}`, table, column, value]),
    ),
  )('%s rejects an update setting %s', async (name, _shown, table, column, value) => {
    await expect(
      dataSource.query(`UPDATE "${table}" SET "${column}" = $1 WHERE id = $2`, [
        value,
        ids[table as string],
      ]),
    ).rejects.toMatchObject({ code: '23514', constraint: name });
  });

  it('rejects an insert that breaks a check, naming the constraint', async () => {
    const tree = await createProfileTree(dataSource);
    await expect(
      createCrawlJob(dataSource, tree.projectId, { progress: 150 }),
    ).rejects.toMatchObject({ code: '23514', constraint: 'ck_crawl_jobs_progress' });
    await expect(
      createExportJob(dataSource, tree.crawlJobId, tree.userId, { format: 'rar' }),
    ).rejects.toMatchObject({ code: '23514', constraint: 'ck_export_jobs_format' });
  });

  it('accepts null in the nullable checked columns', async () => {
    const tree = await createProfileTree(dataSource);
    await expect(
      createImage(dataSource, tree.crawlJobId, { width: null, height: null, file_size: null }),
    ).resolves.toEqual(expect.any(Number));
  });
});
