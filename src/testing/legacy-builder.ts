import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { LEGACY_TABLES, legacyTableDdl, type LegacyTable } from '../upgrade/legacy-schema';
import { quoteIdentifier } from '../sql/quote';

/**
 * Builds a database in the state before this change ("The database before this change" in
 * SPEC.md), for tests, benchmarks and anyone who wants to try the upgrade on something realistic:
 * the five legacy tables, created from the description in legacy-schema.ts, with rows shaped like
 * production (many images per crawl job, many activity logs per user), and optionally a given
 * number of rows breaking each new rule.
 *
 * Rows are generated as a stream and loaded with COPY FROM STDIN, so memory stays flat and a
 * million images take seconds.
 */

export interface LegacySizes {
  profiles: number;
  projects: number;
  crawlJobs: number;
  images: number;
  activityLogs: number;
}

export interface LegacyBuildOptions extends Partial<LegacySizes> {
  /**
   * Rows breaking each rule (see `LegacyBuildResult.planted`). Every broken row is an extra row
   * with exactly one problem, so preflight's count for each rule is exactly this number.
   */
  broken?: number;
  /** Drop the PixCrawler tables (and the migrations table) first, when they exist. */
  dropExisting?: boolean;
  onProgress?: (table: string, done: number, total: number) => void;
}

export interface LegacyBuildResult {
  /** Rows loaded per table, broken ones included. */
  rows: Record<string, number>;
  /** Rows breaking each constraint preflight checks, by constraint name. */
  planted: Record<string, number>;
}

export type LegacyBuildRefusal = 'has-tables' | 'production' | 'migrated' | 'foreign-data';

/**
 * The builder will not build here. `has-tables`: the database already has tables and
 * dropExisting was not given. Even with dropExisting it refuses to drop anything that is not its
 * own: `production` (NODE_ENV is production), `migrated` (the migrations table has rows: a real,
 * upgraded database) and `foreign-data` (profiles the builder did not write).
 */
export class LegacyBuildRefusedError extends Error {
  constructor(
    readonly tables: string[],
    readonly reason: LegacyBuildRefusal = 'has-tables',
  ) {
    super(refusalMessage(tables, reason));
    this.name = 'LegacyBuildRefusedError';
  }
}

function refusalMessage(tables: string[], reason: LegacyBuildRefusal): string {
  switch (reason) {
    case 'has-tables':
      return (
        `The database already has tables (${tables.join(', ')}); the legacy builder only builds ` +
        'into an empty database. Pass dropExisting (`--drop-existing`) to drop the PixCrawler ' +
        'tables and the migrations table first (only a database the builder made itself).'
      );
    case 'production':
      return 'NODE_ENV is production: the legacy builder never drops tables there. Nothing was changed.';
    case 'migrated':
      return (
        'This database has applied migrations (the migrations table has rows): it is a real, ' +
        'upgraded database, and the legacy builder will not drop it. Use an empty database. ' +
        'Nothing was changed.'
      );
    case 'foreign-data':
      return (
        'The profiles table holds rows the legacy builder did not write: it will not drop ' +
        'them. Use an empty database. Nothing was changed.'
      );
  }
}

/** Sizes that look like production, from the number of images. */
export function legacySizes(options: Partial<LegacySizes> = {}): LegacySizes {
  const images = options.images ?? 100_000;
  const crawlJobs = options.crawlJobs ?? Math.max(1, Math.ceil(images / 200));
  const projects = options.projects ?? Math.max(1, Math.ceil(crawlJobs / 5));
  const profiles = options.profiles ?? Math.max(1, Math.ceil(projects / 2));
  const activityLogs = options.activityLogs ?? Math.ceil(images / 2);
  return { profiles, projects, crawlJobs, images, activityLogs };
}

/**
 * The tables of the web app that PixCrawler does not know, parents first: the ORM builder makes
 * them (beside PixCrawler's, with foreign keys into them), and `dropExisting` drops them.
 */
export const ORM_EXTRA_TABLES = [
  'teams',
  'project_members',
  'notifications',
  'api_keys',
  'crawl_job_schedules',
  'image_tags',
];

/**
 * Every table a builder may have made (the ORM builder's extra tables, PixCrawler's seven, the
 * migrations tables and Alembic's `alembic_version`); `dropExisting` drops these, after the
 * checks of openSeedTarget, and nothing else.
 */
export const DROPPED_BY_DROP_EXISTING = [
  ...ORM_EXTRA_TABLES,
  'export_jobs',
  'validation_jobs',
  'activity_logs',
  'images',
  'crawl_jobs',
  'projects',
  'profiles',
  'migrations',
  'typeorm_metadata',
  'alembic_version',
];

const NULL = '\\N';
const hex12 = (n: number) => n.toString(16).padStart(12, '0');
/** A profile's id: deterministic, so children can point at it without a lookup. */
export const profileId = (n: number) => `00000000-0000-4000-8000-${hex12(n)}`;
/** A profile's id in SQL (for rows generated by the server), the same as profileId(n). */
export const profileIdSql = (n: string) =>
  `('00000000-0000-4000-8000-' || lpad(to_hex(${n}), 12, '0'))::uuid`;
/** An id no profile has: what an orphan points at. */
const missingProfileId = (n: number) => `ffffffff-0000-4000-8000-${hex12(n)}`;
/** Ids no parent row has. */
const MISSING_ID_BASE = 1_000_000_000;

const BASE_TIME = Date.UTC(2024, 0, 1);
const timestamp = (n: number) => new Date(BASE_TIME + n * 1000).toISOString();
/** Row n of `count` children spread over `parents` parents in contiguous runs: 1-based parent. */
const parentOf = (n: number, count: number, parents: number) =>
  Math.floor(((n - 1) * parents) / count) + 1;

const STATUSES = ['completed', 'completed', 'completed', 'failed', 'running', 'pending'];
const ACTIONS = ['project.created', 'crawl_job.started', 'crawl_job.completed', 'export.created'];
const FORMATS = ['jpg', 'png', 'webp'];

type Row = CopyRow;

interface TablePlan {
  table: LegacyTable;
  total: number;
  rows: () => Generator<Row>;
}

function plan(
  sizes: LegacySizes,
  broken: number,
): { tables: TablePlan[]; planted: Record<string, number> } {
  const { profiles, projects, crawlJobs, images, activityLogs } = sizes;
  const b = broken;
  const table = (name: string) => LEGACY_TABLES.find((t) => t.name === name)!;

  // Extra rows, by id range, each with one problem:
  // projects: [orphan b][unknown status b]; each orphan project owns one crawl job (after the
  //   broken crawl jobs), which owns one image: fixing the orphan deletes all three, as CASCADE would.
  // crawl jobs: [orphan b][progress b][status b][negative count b][jobs of orphan projects b];
  //   each orphan crawl job owns one image.
  // images: [orphan b][negative width b][images of orphan jobs b][images of orphan projects' jobs b]
  const orphanProjectJob = (k: number) => crawlJobs + 4 * b + k;
  const orphanJob = (k: number) => crawlJobs + k;

  function* profileRows(): Generator<Row> {
    for (let n = 1; n <= profiles + b; n++) {
      const role = n > profiles ? 'superuser' : n % 50 === 0 ? 'admin' : 'user';
      const at = timestamp(n);
      yield [
        profileId(n),
        `user${n}@example.com`,
        `User ${n}`,
        n % 3 ? `https://cdn.example.com/a/${n}.png` : null,
        role,
        at,
        at,
      ];
    }
  }
  function* projectRows(): Generator<Row> {
    for (let n = 1; n <= projects + 2 * b; n++) {
      const k = n - projects;
      const userId =
        k >= 1 && k <= b
          ? missingProfileId(k)
          : profileId(parentOf(Math.min(n, projects), projects, profiles));
      const status = k > b ? 'paused' : n % 10 === 0 ? 'archived' : 'active';
      const at = timestamp(n);
      yield [n, `Project ${n}`, n % 2 ? `Images for dataset ${n}` : null, userId, status, at, at];
    }
  }
  function* crawlJobRows(): Generator<Row> {
    for (let n = 1; n <= crawlJobs + 5 * b; n++) {
      const k = n - crawlJobs;
      const group = k >= 1 ? Math.floor((k - 1) / Math.max(b, 1)) : -1;
      const i = k - group * b;
      let projectId = parentOf(Math.min(n, crawlJobs), crawlJobs, projects);
      let status = STATUSES[n % STATUSES.length];
      let progress = status === 'completed' ? 100 : n % 100;
      let total = 200;
      if (group === 0) projectId = MISSING_ID_BASE + i;
      if (group === 1) progress = i % 2 ? 150 : -5;
      if (group === 2) status = 'stalled';
      if (group === 3) total = -1;
      if (group === 4) projectId = projects + i; // an orphan project's job
      const at = timestamp(n);
      yield [
        n,
        projectId,
        `Crawl ${n}`,
        '["cats","dogs"]',
        1000,
        status,
        progress,
        total,
        180,
        170,
        at,
        status === 'completed' ? at : null,
        4,
        0,
        4,
        0,
        '["task-1","task-2"]',
        at,
        at,
      ];
    }
  }
  function* imageRows(): Generator<Row> {
    for (let n = 1; n <= images + 4 * b; n++) {
      const k = n - images;
      const group = k >= 1 ? Math.floor((k - 1) / Math.max(b, 1)) : -1;
      const i = k - group * b;
      let jobId = parentOf(Math.min(n, images), images, crawlJobs);
      let width: number = 640 + (n % 7) * 64;
      if (group === 0) jobId = MISSING_ID_BASE + i;
      if (group === 1) width = -1;
      if (group === 2) jobId = orphanJob(i);
      if (group === 3) jobId = orphanProjectJob(i);
      const format = FORMATS[n % FORMATS.length];
      yield [
        n,
        jobId,
        `https://images.example.org/p/${n}.${format}`,
        `img_${n}.${format}`,
        `s3://pixcrawler/${jobId}/${n}.${format}`,
        width,
        480,
        50_000 + (n % 1000) * 97,
        format,
      ];
    }
  }
  function* activityLogRows(): Generator<Row> {
    for (let n = 1; n <= activityLogs + b; n++) {
      const k = n - activityLogs;
      const userId =
        k >= 1
          ? missingProfileId(k)
          : n % 10 === 0
            ? null
            : profileId(parentOf(n, activityLogs, profiles));
      const action = ACTIONS[n % ACTIONS.length];
      yield [
        n,
        userId,
        action,
        'crawl_job',
        String(n % 5000),
        `{"ip":"10.0.${n % 256}.${(n >> 8) % 256}"}`,
        timestamp(n),
      ];
    }
  }

  return {
    tables: [
      { table: table('profiles'), total: profiles + b, rows: profileRows },
      { table: table('projects'), total: projects + 2 * b, rows: projectRows },
      { table: table('crawl_jobs'), total: crawlJobs + 5 * b, rows: crawlJobRows },
      { table: table('images'), total: images + 4 * b, rows: imageRows },
      { table: table('activity_logs'), total: activityLogs + b, rows: activityLogRows },
    ],
    planted: {
      ck_profiles_role: b,
      fk_projects_user_id: b,
      ck_projects_status: b,
      fk_crawl_jobs_project_id: b,
      ck_crawl_jobs_progress: b,
      ck_crawl_jobs_status: b,
      ck_crawl_jobs_total_images: b,
      fk_images_crawl_job_id: b,
      ck_images_width: b,
      fk_activity_logs_user_id: b,
    },
  };
}

export type CopyRow = Array<string | number | null>;

/**
 * Streams generated rows into a table with COPY FROM STDIN (text format), 2,000 rows per chunk
 * and only as fast as the server takes them, so memory stays flat whatever the row count. The
 * values must hold no tab, newline or backslash (generated values here never do). The legacy
 * builder loads its tables with it; the benchmarks use it as the ingest ceiling.
 */
export async function copyRows(
  client: Client,
  table: string,
  columns: readonly string[],
  rows: Iterator<CopyRow>,
  onRows?: (done: number) => void,
): Promise<number> {
  let done = 0;
  const source = new Readable({
    read() {
      const lines: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const next = rows.next();
        if (next.done) break;
        if (next.value.length !== columns.length) {
          this.destroy(
            new Error(`${table}: ${next.value.length} values for ${columns.length} columns`),
          );
          return;
        }
        lines.push(next.value.map((v) => (v === null ? NULL : v)).join('\t'));
      }
      if (lines.length === 0) {
        this.push(null);
        return;
      }
      done += lines.length;
      onRows?.(done);
      this.push(`${lines.join('\n')}\n`);
    },
  });
  const list = columns.map((c) => `${quoteIdentifier(c)}`).join(', ');
  await pipeline(
    source,
    client.query(copyFrom(`COPY ${quoteIdentifier(table)} (${list}) FROM STDIN`)),
  );
  return done;
}

/**
 * Before dropExisting drops anything: refuse production, a migrated database and profiles the
 * builder did not write (its profile ids all start 00000000-0000-4000-8000-).
 */
async function assertOnlySeedData(client: Client, tables: string[]): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    throw new LegacyBuildRefusedError(tables, 'production');
  }
  if (tables.includes('migrations')) {
    const { rows } = await client.query(`SELECT 1 FROM "migrations" LIMIT 1`);
    if (rows.length > 0) throw new LegacyBuildRefusedError(tables, 'migrated');
  }
  if (tables.includes('profiles')) {
    const { rows } = await client.query(
      `SELECT 1 FROM "profiles" WHERE id::text NOT LIKE '00000000-0000-4000-8000-%' LIMIT 1`,
    );
    if (rows.length > 0) throw new LegacyBuildRefusedError(tables, 'foreign-data');
  }
}

/**
 * A connection to the database a builder will fill, after the checks both builders make: an
 * empty database, or with `dropExisting` one that holds nothing but earlier seed data (never a
 * migrated or a real database, never under NODE_ENV=production).
 */
export async function openSeedTarget(url: string, dropExisting = false): Promise<Client> {
  const client = new Client({
    connectionString: url,
    application_name: 'pixcrawler-db seed-legacy',
  });
  await client.connect();
  try {
    const { rows: existing } = await client.query<{ name: string }>(
      `SELECT relname AS name FROM pg_class
        WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
        ORDER BY relname`,
    );
    const names = existing.map((row) => row.name);
    if (names.length > 0 && !dropExisting) throw new LegacyBuildRefusedError(names);
    if (names.length > 0) await assertOnlySeedData(client, names);
    return client;
  } catch (error) {
    await client.end();
    throw error;
  }
}

/** Drops every table in DROPPED_BY_DROP_EXISTING that exists (call after openSeedTarget). */
export async function dropSeedTables(client: Client): Promise<void> {
  for (const name of DROPPED_BY_DROP_EXISTING) {
    await client.query(`DROP TABLE IF EXISTS ${quoteIdentifier(name)} CASCADE`);
  }
}

/**
 * The fourth database in the wild: none at all. Leaves the database without any table a builder
 * makes (with `dropExisting`, dropping an earlier build after the same checks as the other
 * builders; without it, refusing a database that has tables), so `migrate` creates the schema
 * from nothing.
 */
export async function buildEmptyDatabase(
  url: string,
  options: { dropExisting?: boolean } = {},
): Promise<{ rows: Record<string, number>; planted: Record<string, number> }> {
  const client = await openSeedTarget(url, options.dropExisting);
  try {
    await client.query('BEGIN');
    await dropSeedTables(client);
    await client.query('COMMIT');
    return { rows: {}, planted: {} };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

export async function buildLegacyDatabase(
  url: string,
  options: LegacyBuildOptions = {},
): Promise<LegacyBuildResult> {
  const sizes = legacySizes(options);
  const broken = options.broken ?? 0;
  const { tables, planted } = plan(sizes, broken);

  const client = await openSeedTarget(url, options.dropExisting);
  try {
    await client.query('BEGIN');
    await dropSeedTables(client);
    for (const { table } of tables) await client.query(legacyTableDdl(table));

    const rows: Record<string, number> = {};
    for (const tablePlan of tables) {
      const { table, total } = tablePlan;
      options.onProgress?.(table.name, 0, total);
      await copyRows(
        client,
        table.name,
        table.columns.map((c) => c.name),
        tablePlan.rows(),
        (done) => options.onProgress?.(table.name, done, total),
      );
      rows[table.name] = total;
      if (table.columns.some((c) => c.serial)) {
        await client.query(
          `SELECT setval(pg_get_serial_sequence('"${table.name}"', 'id'),
                         GREATEST((SELECT max(id) FROM ${quoteIdentifier(table.name)}), 1))`,
        );
      }
    }
    await client.query('COMMIT');
    // Fresh statistics, as a database in service has: the upgrade's plans depend on them.
    await client.query(
      `ANALYZE ${tables.map((t) => `${quoteIdentifier(t.table.name)}`).join(', ')}`,
    );
    return { rows, planted };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}
