import {
  DROPPED_BY_DROP_EXISTING,
  legacySizes,
  openSeedTarget,
  profileIdSql,
  type LegacySizes,
} from './legacy-builder';
import { ALEMBIC_VERSION_TABLE } from '../inspect/schema-catalog';
import { quoteIdentifier } from '../sql/quote';

/**
 * Builds the database PixCrawler's own operator guide produces: what Alembic's
 * `001_initial_schema` creates (SPEC.md, "A database that PixCrawler's own Alembic migration 001
 * built"), with realistic rows in all seven tables:
 * - the seven tables with SERIAL ids (SQLAlchemy's integer primary keys), timestamptz, and the
 *   server defaults Alembic writes; primary keys named `<table>_pkey`;
 * - every foreign key with its ON DELETE rule, under PostgreSQL's names (`<table>_<column>_fkey`);
 * - the guide's twelve indexes under SPEC's names, plus `ix_crawl_jobs_project_id`; profiles.email
 *   as the unique constraint `profiles_email_key` beside a plain index `ix_profiles_email`;
 * - `activity_logs.metadata_` (not `metadata`) and `export_jobs.file_size` integer (not bigint);
 * - no check constraints and no partial indexes;
 * - `alembic_version` holding the revision (`001`, or a later one to simulate).
 * With `broken`, that many extra rows break each rule in `AlembicBuildResult.planted`, each with
 * exactly one problem (the foreign keys exist, so there are no orphans to plant).
 */

export interface AlembicSizes extends LegacySizes {
  validationJobs: number;
  exportJobs: number;
}

export interface AlembicBuildOptions extends Partial<AlembicSizes> {
  /** Rows breaking each rule in `AlembicBuildResult.planted`. */
  broken?: number;
  /** Drop what an earlier build made first (never a migrated or a real database). */
  dropExisting?: boolean;
  /** What `alembic_version` holds; default '001'. */
  revision?: string;
}

export interface AlembicBuildResult {
  /** Rows per table, broken ones included. */
  rows: Record<string, number>;
  /** Rows breaking each constraint preflight checks, by constraint name. */
  planted: Record<string, number>;
  revision: string;
}

const STATUS = `"status" character varying(20) DEFAULT 'pending'::character varying NOT NULL`;
const CREATED = `"created_at" timestamp with time zone DEFAULT now() NOT NULL`;
const UPDATED = `"updated_at" timestamp with time zone DEFAULT now() NOT NULL`;
const count = (name: string) => `${quoteIdentifier(name)} integer DEFAULT 0 NOT NULL`;

/** Alembic 001's DDL, in its order, as op.create_table and op.create_index emit it. */
const ALEMBIC_001_DDL = [
  `CREATE TABLE "profiles" (
     "id" uuid NOT NULL,
     "email" character varying(255) NOT NULL,
     "full_name" character varying(100),
     "avatar_url" text,
     "role" character varying(20) DEFAULT 'user'::character varying NOT NULL,
     ${CREATED}, ${UPDATED},
     PRIMARY KEY ("id"),
     UNIQUE ("email"))`,
  `CREATE INDEX "ix_profiles_email" ON "profiles" ("email")`,
  `CREATE TABLE "projects" (
     "id" SERIAL NOT NULL,
     "name" character varying(100) NOT NULL,
     "description" text,
     "user_id" uuid NOT NULL,
     "status" character varying(20) DEFAULT 'active'::character varying NOT NULL,
     ${CREATED}, ${UPDATED},
     FOREIGN KEY ("user_id") REFERENCES "profiles" ("id") ON DELETE CASCADE,
     PRIMARY KEY ("id"))`,
  `CREATE INDEX "ix_project_user_id" ON "projects" ("user_id")`,
  `CREATE TABLE "crawl_jobs" (
     "id" SERIAL NOT NULL,
     "project_id" integer NOT NULL,
     "name" character varying(100) NOT NULL,
     "keywords" jsonb NOT NULL,
     "max_images" integer DEFAULT 1000 NOT NULL,
     ${STATUS},
     ${count('progress')}, ${count('total_images')}, ${count('downloaded_images')},
     ${count('valid_images')},
     "started_at" timestamp with time zone,
     "completed_at" timestamp with time zone,
     ${count('total_chunks')}, ${count('active_chunks')}, ${count('completed_chunks')},
     ${count('failed_chunks')},
     "task_ids" jsonb DEFAULT '[]'::jsonb NOT NULL,
     ${CREATED}, ${UPDATED},
     FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON DELETE CASCADE,
     PRIMARY KEY ("id"))`,
  `CREATE INDEX "ix_crawl_job_status" ON "crawl_jobs" ("status")`,
  `CREATE INDEX "ix_crawl_job_project_status" ON "crawl_jobs" ("project_id", "status")`,
  `CREATE INDEX "ix_crawl_jobs_project_id" ON "crawl_jobs" ("project_id")`,
  `CREATE TABLE "images" (
     "id" SERIAL NOT NULL,
     "crawl_job_id" integer NOT NULL,
     "original_url" text NOT NULL,
     "filename" character varying(255) NOT NULL,
     "storage_url" text,
     "width" integer,
     "height" integer,
     "file_size" integer,
     "format" character varying(10),
     FOREIGN KEY ("crawl_job_id") REFERENCES "crawl_jobs" ("id") ON DELETE CASCADE,
     PRIMARY KEY ("id"))`,
  `CREATE INDEX "ix_image_crawl_job_id" ON "images" ("crawl_job_id")`,
  `CREATE TABLE "activity_logs" (
     "id" SERIAL NOT NULL,
     "user_id" uuid,
     "action" text NOT NULL,
     "resource_type" character varying(50),
     "resource_id" character varying(50),
     "metadata_" jsonb,
     "timestamp" timestamp with time zone DEFAULT now() NOT NULL,
     FOREIGN KEY ("user_id") REFERENCES "profiles" ("id") ON DELETE SET NULL,
     PRIMARY KEY ("id"))`,
  `CREATE INDEX "ix_activity_log_user_id" ON "activity_logs" ("user_id")`,
  `CREATE INDEX "ix_activity_log_timestamp" ON "activity_logs" ("timestamp")`,
  `CREATE TABLE "validation_jobs" (
     "id" SERIAL NOT NULL,
     "crawl_job_id" integer NOT NULL,
     "name" character varying(100) NOT NULL,
     ${STATUS},
     ${count('progress')}, ${count('total_images')}, ${count('validated_images')},
     ${count('invalid_images')},
     "validation_rules" jsonb DEFAULT '{}'::jsonb NOT NULL,
     "started_at" timestamp with time zone,
     "completed_at" timestamp with time zone,
     "error_message" text,
     ${CREATED}, ${UPDATED},
     FOREIGN KEY ("crawl_job_id") REFERENCES "crawl_jobs" ("id") ON DELETE CASCADE,
     PRIMARY KEY ("id"))`,
  `CREATE INDEX "ix_validation_job_status" ON "validation_jobs" ("status")`,
  `CREATE INDEX "ix_validation_job_crawl_job_id" ON "validation_jobs" ("crawl_job_id")`,
  `CREATE TABLE "export_jobs" (
     "id" SERIAL NOT NULL,
     "crawl_job_id" integer NOT NULL,
     "user_id" uuid NOT NULL,
     "name" character varying(100) NOT NULL,
     ${STATUS},
     ${count('progress')},
     "format" character varying(20) DEFAULT 'zip'::character varying NOT NULL,
     ${count('total_images')}, ${count('exported_images')},
     "file_size" integer,
     "download_url" text,
     "export_options" jsonb DEFAULT '{}'::jsonb NOT NULL,
     "started_at" timestamp with time zone,
     "completed_at" timestamp with time zone,
     "expires_at" timestamp with time zone,
     "error_message" text,
     ${CREATED}, ${UPDATED},
     FOREIGN KEY ("crawl_job_id") REFERENCES "crawl_jobs" ("id") ON DELETE CASCADE,
     FOREIGN KEY ("user_id") REFERENCES "profiles" ("id") ON DELETE CASCADE,
     PRIMARY KEY ("id"))`,
  `CREATE INDEX "ix_export_job_status" ON "export_jobs" ("status")`,
  `CREATE INDEX "ix_export_job_user_id" ON "export_jobs" ("user_id")`,
  `CREATE INDEX "ix_export_job_crawl_job_id" ON "export_jobs" ("crawl_job_id")`,
];

/** Row n's time: one minute apart from 2024-01-01 UTC. */
const at = (n: string) => `(timestamptz '2024-01-01 00:00:00+00' + (${n}) * interval '1 minute')`;

export async function buildAlembicDatabase(
  url: string,
  options: AlembicBuildOptions = {},
): Promise<AlembicBuildResult> {
  const { profiles, projects, crawlJobs, images, activityLogs } = legacySizes(options);
  const validationJobs = options.validationJobs ?? Math.max(1, Math.ceil(crawlJobs / 2));
  const exportJobs = options.exportJobs ?? Math.max(1, Math.ceil(crawlJobs / 2));
  const revision = options.revision ?? '001';
  const b = options.broken ?? 0;
  const client = await openSeedTarget(url, options.dropExisting);
  try {
    await client.query('BEGIN');
    for (const name of DROPPED_BY_DROP_EXISTING) {
      await client.query(`DROP TABLE IF EXISTS ${quoteIdentifier(name)} CASCADE`);
    }
    // What `alembic upgrade 001` does: its bookkeeping table, the schema, the revision.
    await client.query(
      `CREATE TABLE ${ALEMBIC_VERSION_TABLE} (
         version_num character varying(32) NOT NULL,
         CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))`,
    );
    for (const ddl of ALEMBIC_001_DDL) await client.query(ddl);
    await client.query(`INSERT INTO ${ALEMBIC_VERSION_TABLE} (version_num) VALUES ($1)`, [
      revision,
    ]);

    // Profiles: every 50th an admin; the last b have a role the check forbids.
    await client.query(
      `INSERT INTO "profiles" ("id", "email", "full_name", "avatar_url", "role", "created_at", "updated_at")
       SELECT ${profileIdSql('n')}, 'user' || n || '@example.com', 'User ' || n,
              CASE WHEN n % 3 > 0 THEN 'https://cdn.example.com/a/' || n || '.png' END,
              CASE WHEN n > ${profiles} THEN 'owner' WHEN n % 50 = 0 THEN 'admin' ELSE 'user' END,
              ${at('n')}, ${at('n + 30')}
         FROM generate_series(1, ${profiles + b}) n`,
    );
    // Projects: spread over the profiles; the last b have a status the check forbids.
    await client.query(
      `INSERT INTO "projects" ("name", "description", "user_id", "status", "created_at", "updated_at")
       SELECT 'Project ' || n, CASE WHEN n % 2 = 1 THEN 'Images for dataset ' || n END,
              ${profileIdSql(`((least(n, ${projects}) - 1) * ${profiles} / ${projects} + 1)`)},
              CASE WHEN n > ${projects} THEN 'paused' WHEN n % 10 = 0 THEN 'archived' ELSE 'active' END,
              ${at('n')}, ${at('n + 60')}
         FROM generate_series(1, ${projects + b}) n`,
    );
    // Crawl jobs: the last b report progress past 100.
    await client.query(
      `INSERT INTO "crawl_jobs" ("project_id", "name", "keywords", "max_images", "status",
              "progress", "total_images", "downloaded_images", "valid_images", "started_at",
              "completed_at", "total_chunks", "completed_chunks", "task_ids", "created_at", "updated_at")
       SELECT (least(n, ${crawlJobs}) - 1) * ${projects} / ${crawlJobs} + 1, 'Crawl ' || n,
              '["birds","trees"]', 1000,
              (ARRAY['completed','completed','completed','failed','running','pending'])[n % 6 + 1],
              CASE WHEN n > ${crawlJobs} THEN 120 WHEN n % 6 IN (0, 1, 2) THEN 100 ELSE n % 100 END,
              200, 180, 170, ${at('n')}, CASE WHEN n % 6 IN (0, 1, 2) THEN ${at('n + 90')} END,
              4, 4, '["celery-1","celery-2"]', ${at('n')}, ${at('n + 90')}
         FROM generate_series(1, ${crawlJobs + b}) n`,
    );
    // Images: many per crawl job; the last b have a negative width.
    await client.query(
      `INSERT INTO "images" ("crawl_job_id", "original_url", "filename", "storage_url", "width",
                             "height", "file_size", "format")
       SELECT j, 'https://images.example.org/p/' || n || '.' || f, 'img_' || n || '.' || f,
              'job-' || j || '/' || n || '.' || f,
              CASE WHEN n > ${images} THEN -1 ELSE 640 + (n % 7) * 64 END, 480,
              50000 + (n % 1000) * 97, f
         FROM generate_series(1, ${images + b}) n,
              LATERAL (SELECT (least(n, ${images}) - 1) * ${crawlJobs} / ${images} + 1 AS j,
                              (ARRAY['jpg','png','webp'])[n % 3 + 1] AS f) x`,
    );
    // Activity logs, with the metadata Alembic's models wrote (some null).
    await client.query(
      `INSERT INTO "activity_logs" ("user_id", "action", "resource_type", "resource_id", "metadata_", "timestamp")
       SELECT CASE WHEN n % 10 = 0 THEN NULL
                   ELSE ${profileIdSql(`((n - 1) * ${profiles} / ${Math.max(activityLogs, 1)} + 1)`)} END,
              (ARRAY['project.created','crawl_job.started','crawl_job.completed','export.created'])[n % 4 + 1],
              'crawl_job', (n % 5000)::text,
              CASE WHEN n % 7 = 0 THEN NULL ELSE jsonb_build_object('keywords', jsonb_build_array('birds'), 'n', n) END,
              ${at('n')}
         FROM generate_series(1, ${activityLogs}) n`,
    );
    // Validation jobs over the crawl jobs; the last 3b break status, progress, invalid_images.
    await client.query(
      `INSERT INTO "validation_jobs" ("crawl_job_id", "name", "status", "progress", "total_images",
              "validated_images", "invalid_images", "validation_rules", "started_at",
              "completed_at", "created_at", "updated_at")
       SELECT (n - 1) % ${crawlJobs} + 1, 'Validate ' || n,
              CASE WHEN n > ${validationJobs} AND n <= ${validationJobs + b} THEN 'queued'
                   ELSE (ARRAY['completed','completed','failed','pending'])[n % 4 + 1] END,
              CASE WHEN n > ${validationJobs + b} AND n <= ${validationJobs + 2 * b} THEN 130
                   WHEN n % 4 IN (0, 1) THEN 100 ELSE 0 END,
              200, 190,
              CASE WHEN n > ${validationJobs + 2 * b} THEN -3 ELSE n % 10 END,
              '{"min_width": 256}', ${at('n')}, CASE WHEN n % 4 IN (0, 1) THEN ${at('n + 5')} END,
              ${at('n')}, ${at('n + 5')}
         FROM generate_series(1, ${validationJobs + 3 * b}) n`,
    );
    // Export jobs, owned by the crawl job's project owner; the last 4b break status, format,
    // progress and exported_images, in that order.
    await client.query(
      `INSERT INTO "export_jobs" ("crawl_job_id", "user_id", "name", "status", "progress", "format",
              "total_images", "exported_images", "file_size", "download_url", "export_options",
              "started_at", "completed_at", "expires_at", "created_at", "updated_at")
       SELECT j.id, p.user_id, 'Export ' || n,
              CASE WHEN n > ${exportJobs} AND n <= ${exportJobs + b} THEN 'expired'
                   ELSE (ARRAY['completed','completed','failed','pending'])[n % 4 + 1] END,
              CASE WHEN n > ${exportJobs + 2 * b} AND n <= ${exportJobs + 3 * b} THEN 250
                   WHEN n % 4 IN (0, 1) THEN 100 ELSE 0 END,
              CASE WHEN n > ${exportJobs + b} AND n <= ${exportJobs + 2 * b} THEN 'parquet'
                   ELSE (ARRAY['zip','tar','csv','jsonl'])[n % 4 + 1] END,
              200,
              CASE WHEN n > ${exportJobs + 3 * b} THEN -1 WHEN n % 4 IN (0, 1) THEN 200 ELSE 0 END,
              CASE WHEN n % 4 IN (0, 1) THEN 1048576 + n END,
              CASE WHEN n % 4 IN (0, 1) THEN 'https://downloads.example.org/export-' || n END,
              '{}', ${at('n')}, CASE WHEN n % 4 IN (0, 1) THEN ${at('n + 3')} END,
              CASE WHEN n % 4 IN (0, 1) THEN ${at('n + 10080')} END, ${at('n')}, ${at('n + 3')}
         FROM generate_series(1, ${exportJobs + 4 * b}) n
         JOIN "crawl_jobs" j ON j.id = (n - 1) % ${crawlJobs} + 1
         JOIN "projects" p ON p.id = j.project_id`,
    );
    await client.query('COMMIT');
    await client.query('ANALYZE');

    const rows: Record<string, number> = {};
    for (const name of [
      'profiles',
      'projects',
      'crawl_jobs',
      'images',
      'activity_logs',
      'validation_jobs',
      'export_jobs',
    ]) {
      const { rows: counted } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${quoteIdentifier(name)}`,
      );
      rows[name] = Number(counted[0].n);
    }
    const planted: Record<string, number> =
      b === 0
        ? {}
        : {
            ck_profiles_role: b,
            ck_projects_status: b,
            ck_crawl_jobs_progress: b,
            ck_images_width: b,
            ck_validation_jobs_status: b,
            ck_validation_jobs_progress: b,
            ck_validation_jobs_invalid_images: b,
            ck_export_jobs_status: b,
            ck_export_jobs_format: b,
            ck_export_jobs_progress: b,
            ck_export_jobs_exported_images: b,
          };
    return { rows, planted, revision };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}
