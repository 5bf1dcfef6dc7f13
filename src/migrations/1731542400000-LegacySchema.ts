import type { QueryRunner } from 'typeorm';
import type { PixCrawlerMigration } from './migration-traits';

/**
 * The five tables as every existing PixCrawler database holds them ("The database before this
 * change" in SPEC.md): columns, primary keys and the unique constraint on profiles.email, named
 * as PostgreSQL names them by default, and nothing more.
 *
 * An existing database does not run this migration: `pixcrawler-db migrate --baseline` checks
 * that its tables match and records this migration as applied.
 *
 * squawk (npm run lint:migrations) warns prefer-bigint-over-int, prefer-identity and
 * prefer-text-field here; kept on purpose: these are the types existing databases have (serial
 * int4 ids, varchar(n)), which SPEC.md keeps. New, empty tables: nothing to lock.
 */
export class LegacySchema1731542400000 implements PixCrawlerMigration {
  name = 'LegacySchema1731542400000';
  readonly adoptsExistingTables = true;
  readonly creates = ['profiles', 'projects', 'crawl_jobs', 'images', 'activity_logs'].map(
    (table) => ({ kind: 'table' as const, table, name: table }),
  );

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "profiles" (
      "id" uuid NOT NULL,
      "email" character varying(255) NOT NULL,
      "full_name" character varying(100),
      "avatar_url" text,
      "role" character varying(20) NOT NULL DEFAULT 'user',
      "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      CONSTRAINT "profiles_pkey" PRIMARY KEY ("id"),
      CONSTRAINT "profiles_email_key" UNIQUE ("email"))`);
    await queryRunner.query(`CREATE TABLE "projects" (
      "id" SERIAL NOT NULL,
      "name" character varying(100) NOT NULL,
      "description" text,
      "user_id" uuid NOT NULL,
      "status" character varying(20) NOT NULL DEFAULT 'active',
      "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      CONSTRAINT "projects_pkey" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE TABLE "crawl_jobs" (
      "id" SERIAL NOT NULL,
      "project_id" integer NOT NULL,
      "name" character varying(100) NOT NULL,
      "keywords" jsonb NOT NULL,
      "max_images" integer NOT NULL DEFAULT 1000,
      "status" character varying(20) NOT NULL DEFAULT 'pending',
      "progress" integer NOT NULL DEFAULT 0,
      "total_images" integer NOT NULL DEFAULT 0,
      "downloaded_images" integer NOT NULL DEFAULT 0,
      "valid_images" integer NOT NULL DEFAULT 0,
      "started_at" TIMESTAMP WITH TIME ZONE,
      "completed_at" TIMESTAMP WITH TIME ZONE,
      "total_chunks" integer NOT NULL DEFAULT 0,
      "active_chunks" integer NOT NULL DEFAULT 0,
      "completed_chunks" integer NOT NULL DEFAULT 0,
      "failed_chunks" integer NOT NULL DEFAULT 0,
      "task_ids" jsonb NOT NULL DEFAULT '[]',
      "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      CONSTRAINT "crawl_jobs_pkey" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE TABLE "images" (
      "id" SERIAL NOT NULL,
      "crawl_job_id" integer NOT NULL,
      "original_url" text NOT NULL,
      "filename" character varying(255) NOT NULL,
      "storage_url" text,
      "width" integer,
      "height" integer,
      "file_size" integer,
      "format" character varying(10),
      CONSTRAINT "images_pkey" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE TABLE "activity_logs" (
      "id" SERIAL NOT NULL,
      "user_id" uuid,
      "action" text NOT NULL,
      "resource_type" character varying(50),
      "resource_id" character varying(50),
      "metadata" jsonb,
      "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      CONSTRAINT "activity_logs_pkey" PRIMARY KEY ("id"))`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS "activity_logs"`);
    await queryRunner.query(`DROP TABLE IF EXISTS "images"`);
    await queryRunner.query(`DROP TABLE IF EXISTS "crawl_jobs"`);
    await queryRunner.query(`DROP TABLE IF EXISTS "projects"`);
    await queryRunner.query(`DROP TABLE IF EXISTS "profiles"`);
  }
}
