import type { DataSource } from 'typeorm';
import {
  buildAlembicDatabase,
  type AlembicBuildResult,
} from '../../src/testing/alembic-database-builder';
import { PIXCRAWLER_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import { runCli } from '../helpers/cli';
import { rowCounts } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * The testing kit's fixture for SPEC.md's "A database that PixCrawler's own Alembic migration 001
 * built": its shape, read back from the catalogs, and its rows.
 */

const BROKEN = 3;
const SIZES = {
  profiles: 4,
  projects: 8,
  crawlJobs: 20,
  images: 2_000,
  activityLogs: 300,
  validationJobs: 12,
  exportJobs: 10,
};

/** The rules a broken row breaks, one problem each. */
const PLANTED_RULES = [
  'ck_crawl_jobs_progress',
  'ck_export_jobs_exported_images',
  'ck_export_jobs_format',
  'ck_export_jobs_progress',
  'ck_export_jobs_status',
  'ck_images_width',
  'ck_profiles_role',
  'ck_projects_status',
  'ck_validation_jobs_invalid_images',
  'ck_validation_jobs_progress',
  'ck_validation_jobs_status',
];

const pkey = (table: string) => `${table}.${table}_pkey PRIMARY KEY (id)`;
const fkey = (table: string, column: string, target: string, rule: string) =>
  `${table}.${table}_${column}_fkey FOREIGN KEY (${column}) REFERENCES ${target}(id) ON DELETE ${rule}`;

/** Every constraint of the eight tables: `table.name definition`. */
const CONSTRAINTS = [
  'alembic_version.alembic_version_pkc PRIMARY KEY (version_num)',
  pkey('activity_logs'),
  fkey('activity_logs', 'user_id', 'profiles', 'SET NULL'),
  pkey('crawl_jobs'),
  fkey('crawl_jobs', 'project_id', 'projects', 'CASCADE'),
  pkey('export_jobs'),
  fkey('export_jobs', 'crawl_job_id', 'crawl_jobs', 'CASCADE'),
  fkey('export_jobs', 'user_id', 'profiles', 'CASCADE'),
  pkey('images'),
  fkey('images', 'crawl_job_id', 'crawl_jobs', 'CASCADE'),
  'profiles.profiles_email_key UNIQUE (email)',
  pkey('profiles'),
  pkey('projects'),
  fkey('projects', 'user_id', 'profiles', 'CASCADE'),
  pkey('validation_jobs'),
  fkey('validation_jobs', 'crawl_job_id', 'crawl_jobs', 'CASCADE'),
].sort();

/** Every index of the eight tables: `name table(columns) [unique]`; none is partial. */
const INDEXES = [
  'alembic_version_pkc alembic_version(version_num) unique',
  ...PIXCRAWLER_TABLE_NAMES.map((table) => `${table}_pkey ${table}(id) unique`),
  'profiles_email_key profiles(email) unique',
  'ix_profiles_email profiles(email)',
  'ix_project_user_id projects(user_id)',
  'ix_crawl_job_status crawl_jobs(status)',
  'ix_crawl_job_project_status crawl_jobs(project_id,status)',
  'ix_crawl_jobs_project_id crawl_jobs(project_id)',
  'ix_image_crawl_job_id images(crawl_job_id)',
  'ix_activity_log_user_id activity_logs(user_id)',
  'ix_activity_log_timestamp activity_logs(timestamp)',
  'ix_validation_job_status validation_jobs(status)',
  'ix_validation_job_crawl_job_id validation_jobs(crawl_job_id)',
  'ix_export_job_status export_jobs(status)',
  'ix_export_job_user_id export_jobs(user_id)',
  'ix_export_job_crawl_job_id export_jobs(crawl_job_id)',
].sort();

/** Every server default Alembic writes, besides the ids' sequences: `table.column default`. */
const DEFAULTS = [
  'profiles.role user',
  'projects.status active',
  'crawl_jobs.max_images 1000',
  'crawl_jobs.status pending',
  ...[
    'progress',
    'total_images',
    'downloaded_images',
    'valid_images',
    'total_chunks',
    'active_chunks',
    'completed_chunks',
    'failed_chunks',
  ].map((column) => `crawl_jobs.${column} 0`),
  'crawl_jobs.task_ids []',
  'validation_jobs.status pending',
  ...['progress', 'total_images', 'validated_images', 'invalid_images'].map(
    (column) => `validation_jobs.${column} 0`,
  ),
  'validation_jobs.validation_rules {}',
  'export_jobs.status pending',
  'export_jobs.format zip',
  ...['progress', 'total_images', 'exported_images'].map((column) => `export_jobs.${column} 0`),
  'export_jobs.export_options {}',
  'activity_logs.timestamp now()',
  ...['profiles', 'projects', 'crawl_jobs', 'validation_jobs', 'export_jobs'].flatMap((table) => [
    `${table}.created_at now()`,
    `${table}.updated_at now()`,
  ]),
].sort();

describe("the testing kit's database built by PixCrawler's Alembic 001", () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let built: AlembicBuildResult;

  beforeAll(async () => {
    db = await createTestDatabase('alembic_fixture');
    built = await buildAlembicDatabase(db.url, { ...SIZES, broken: BROKEN });
    dataSource = await db.connect();
  });
  afterAll(() => db.drop());

  it('has the seven tables and alembic_version, and nothing else', async () => {
    const rows = await db.query<{ name: string }>(
      `SELECT relname AS name FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY 1`,
    );
    expect(rows.map((row) => row.name).sort()).toEqual(
      [...PIXCRAWLER_TABLE_NAMES, 'alembic_version'].sort(),
    );
  });

  it('names its keys as PostgreSQL does, with the ON DELETE rules of 001, and has no checks', async () => {
    const rows = await db.query<{ item: string }>(
      `SELECT conrelid::regclass::text || '.' || conname || ' ' || pg_get_constraintdef(oid) AS item
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace
          AND contype <> 'n' -- NOT NULL, a constraint of its own from PostgreSQL 18 on
        ORDER BY 1`,
    );
    expect(rows.map((row) => row.item).sort()).toEqual(CONSTRAINTS);
  });

  it("has 001's indexes under their names: one unique index on email (the constraint's), no partial one", async () => {
    const rows = await db.query<{ item: string; partial: boolean }>(
      `SELECT c.relname || ' ' || i.indrelid::regclass::text || '(' ||
              (SELECT string_agg(a.attname, ',' ORDER BY k.ord)
                 FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) || ')' ||
              CASE WHEN i.indisunique THEN ' unique' ELSE '' END AS item,
              i.indpred IS NOT NULL AS partial
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1`,
    );
    expect(rows.map((row) => row.item).sort()).toEqual(INDEXES);
    expect(rows.filter((row) => row.partial)).toEqual([]);
  });

  it('has serial integer ids, timestamptz timestamps and the server defaults Alembic writes', async () => {
    const columns = await db.query<{
      table: string;
      column: string;
      type: string;
      default: string | null;
    }>(
      `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
              pg_get_expr(d.adbin, d.adrelid) AS default
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped AND c.relname = ANY($1)`,
      [PIXCRAWLER_TABLE_NAMES],
    );
    const ids = columns.filter((c) => c.column === 'id');
    expect(ids.find((c) => c.table === 'profiles')).toMatchObject({ type: 'uuid', default: null });
    for (const id of ids.filter((c) => c.table !== 'profiles')) {
      expect(id).toMatchObject({
        type: 'integer',
        default: `nextval('${id.table}_id_seq'::regclass)`,
      });
    }
    const timestamps = columns.filter((c) => /_at$|^timestamp$/.test(c.column));
    // created_at and updated_at on five tables, started_at and completed_at on the three job
    // tables, export_jobs.expires_at, activity_logs.timestamp.
    expect(timestamps).toHaveLength(5 * 2 + 3 * 2 + 1 + 1);
    expect(new Set(timestamps.map((c) => c.type))).toEqual(new Set(['timestamp with time zone']));
    const defaults = columns
      .filter((c) => c.default !== null && c.column !== 'id')
      .map(
        (c) =>
          `${c.table}.${c.column} ${c.default!.replace(/^'(.*)'::(character varying|jsonb)$/, '$1')}`,
      )
      .sort();
    expect(defaults).toEqual(DEFAULTS);
  });

  it('has activity_logs.metadata_ (not metadata) and an integer export_jobs.file_size', async () => {
    const rows = await db.query<{ item: string }>(
      `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS item
         FROM information_schema.columns
        WHERE table_schema = 'public'
          AND (table_name, column_name) IN (('activity_logs', 'metadata'),
               ('activity_logs', 'metadata_'), ('export_jobs', 'file_size'),
               ('images', 'file_size'))`,
    );
    expect(rows.map((row) => row.item).sort()).toEqual([
      'activity_logs.metadata_ jsonb YES',
      'export_jobs.file_size integer YES',
      'images.file_size integer YES',
    ]);
  });

  it('has alembic_version as Alembic makes it, holding 001', async () => {
    const columns = await db.query<{ item: string }>(
      `SELECT column_name || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || is_nullable AS item
         FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = 'alembic_version'::regclass AND a.attname = c.column_name
        WHERE c.table_schema = 'public' AND c.table_name = 'alembic_version'`,
    );
    expect(columns.map((row) => row.item)).toEqual(['version_num character varying(32) NO']);
    expect(await db.query(`SELECT version_num FROM alembic_version`)).toEqual([
      { version_num: '001' },
    ]);
    expect(built.revision).toBe('001');
  });

  it('holds the rows it reports, broken ones included', async () => {
    const b = BROKEN;
    const expected = {
      profiles: SIZES.profiles + b,
      projects: SIZES.projects + b,
      crawl_jobs: SIZES.crawlJobs + b,
      images: SIZES.images + b,
      activity_logs: SIZES.activityLogs,
      validation_jobs: SIZES.validationJobs + 3 * b,
      export_jobs: SIZES.exportJobs + 4 * b,
    };
    expect(built.rows).toEqual(expected);
    expect(await rowCounts(db, PIXCRAWLER_TABLE_NAMES)).toEqual(expected);
  });

  it('plants exactly `broken` rows per rule, each breaking one rule only', async () => {
    expect(Object.keys(built.planted).sort()).toEqual(PLANTED_RULES);
    const checks = dataSource.entityMetadatas.flatMap((metadata) =>
      metadata.checks.map((check) => ({
        table: metadata.tableName,
        name: check.name,
        rule: check.expression!,
      })),
    );
    expect(checks.map((check) => check.name)).toEqual(expect.arrayContaining(PLANTED_RULES));
    const breaking: Record<string, number> = {};
    for (const { table, name, rule } of checks) {
      const [row] = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${table}" WHERE NOT (${rule})`,
      );
      if (Number(row.n) > 0) breaking[name] = Number(row.n);
    }
    expect(breaking).toEqual(built.planted);
    expect(Object.values(built.planted)).toEqual(PLANTED_RULES.map(() => BROKEN));
    // One problem per row: per table, the rows breaking any rule are the sum of the rules' counts.
    for (const table of PIXCRAWLER_TABLE_NAMES) {
      const rules = checks.filter((check) => check.table === table);
      if (rules.length === 0) continue;
      const [row] = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${table}"
          WHERE ${rules.map((check) => `NOT (${check.rule})`).join(' OR ')}`,
      );
      const planted = rules.reduce((sum, check) => sum + (built.planted[check.name] ?? 0), 0);
      expect([table, Number(row.n)]).toEqual([table, planted]);
    }
  });

  it('has realistic rows: many images per job, metadata_, exports owned by the project owner', async () => {
    const [row] = await db.query<Record<string, string>>(`
      SELECT (SELECT min(n) FROM (SELECT count(*) AS n FROM images GROUP BY crawl_job_id) x) AS min_images,
             (SELECT count(*) FROM activity_logs WHERE metadata_ IS NULL) AS null_metadata,
             (SELECT count(*) FROM activity_logs WHERE jsonb_typeof(metadata_) = 'object') AS metadata,
             (SELECT count(*) FROM activity_logs WHERE user_id IS NULL) AS no_user,
             (SELECT count(*) FROM export_jobs e JOIN crawl_jobs j ON j.id = e.crawl_job_id
                JOIN projects p ON p.id = j.project_id WHERE e.user_id <> p.user_id) AS foreign_owner,
             (SELECT count(DISTINCT format) FROM export_jobs
               WHERE format IN ('zip', 'tar', 'csv', 'jsonl')) AS formats,
             (SELECT count(*) FROM export_jobs WHERE file_size > 0) AS sized_exports,
             (SELECT count(DISTINCT status) FROM validation_jobs) AS validation_statuses,
             (SELECT count(DISTINCT crawl_job_id) FROM validation_jobs) AS validated_jobs`);
    expect(Number(row.min_images)).toBeGreaterThanOrEqual(50);
    expect(Number(row.null_metadata)).toBeGreaterThan(0);
    expect(Number(row.metadata)).toBeGreaterThan(Number(row.null_metadata));
    expect(Number(row.no_user)).toBeGreaterThan(0);
    expect(Number(row.foreign_owner)).toBe(0);
    expect(Number(row.formats)).toBe(4);
    expect(Number(row.sized_exports)).toBeGreaterThan(0);
    expect(Number(row.validation_statuses)).toBeGreaterThan(1);
    expect(Number(row.validated_jobs)).toBeGreaterThan(1);
  });

  it('leaves each sequence at its max(id) and fresh statistics', async () => {
    for (const table of PIXCRAWLER_TABLE_NAMES.filter((t) => t !== 'profiles')) {
      const [row] = await db.query<{ max: number; last: string }>(
        `SELECT (SELECT max(id) FROM "${table}") AS max,
                (SELECT last_value FROM pg_sequences
                  WHERE schemaname = 'public' AND sequencename = $1) AS last`,
        [`${table}_id_seq`],
      );
      expect([table, Number(row.last)]).toEqual([table, row.max]);
    }
    const [row] = await db.query<{ n: number }>(
      `SELECT reltuples::int AS n FROM pg_class WHERE oid = 'images'::regclass`,
    );
    expect(row.n).toBe(SIZES.images + BROKEN);
  });
});

describe('seed-legacy --flavour alembic and empty', () => {
  let db: TestDatabase;
  const tables = async () =>
    (
      await db.query<{ name: string }>(
        `SELECT relname AS name FROM pg_class
          WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`,
      )
    )
      .map((row) => row.name)
      .sort();

  beforeAll(async () => {
    db = await createTestDatabase('alembic_fixture_cli');
  });
  afterAll(() => db.drop());

  it('builds it, rebuilds its own build with --drop-existing, and then empties it', async () => {
    const seed = ['seed-legacy', '--flavour', 'alembic', '--images', '200'];
    const first = await runCli(seed, db.url);
    expect(first.code).toBe(0);
    expect(first.output).toContain("Building a database PixCrawler's Alembic 001 built");
    expect(first.output).toContain('`pixcrawler-db plan --baseline`');

    const refused = await runCli(seed, db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('already has tables');

    expect((await runCli([...seed, '--drop-existing'], db.url)).code).toBe(0);
    expect(await tables()).toEqual([...PIXCRAWLER_TABLE_NAMES, 'alembic_version'].sort());

    // A later revision, rebuilt over the CLI's build by the kit.
    const later = await buildAlembicDatabase(db.url, {
      images: 100,
      revision: 'f379add8683c',
      dropExisting: true,
    });
    expect(later.revision).toBe('f379add8683c');
    expect(await db.query(`SELECT version_num FROM alembic_version`)).toEqual([
      { version_num: 'f379add8683c' },
    ]);

    const emptyRefused = await runCli(['seed-legacy', '--flavour', 'empty'], db.url);
    expect(emptyRefused.code).toBe(1);
    expect(emptyRefused.output).toContain('already has tables');
    expect(await tables()).toContain('alembic_version');

    const empty = await runCli(['seed-legacy', '--flavour', 'empty', '--drop-existing'], db.url);
    expect(empty.code).toBe(0);
    expect(empty.output).toContain('`pixcrawler-db migrate`');
    expect(await tables()).toEqual([]);
  });

  it('empties an ORM-made build too, its extra tables included', async () => {
    expect(
      (await runCli(['seed-legacy', '--flavour', 'orm', '--images', '100'], db.url)).code,
    ).toBe(0);
    expect(await tables()).toContain('teams');
    expect(
      (await runCli(['seed-legacy', '--flavour', 'empty', '--drop-existing'], db.url)).code,
    ).toBe(0);
    expect(await tables()).toEqual([]);
  });

  it('refuses to empty a migrated database', async () => {
    await db.migrate();
    const { code, output } = await runCli(
      ['seed-legacy', '--flavour', 'empty', '--drop-existing'],
      db.url,
    );
    expect(code).toBe(1);
    expect(output).toContain('has applied migrations');
    expect(await tables()).toContain('export_jobs');
  });
});
