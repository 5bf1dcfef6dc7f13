/**
 * Every closed set of values in the schema, defined once. The TypeScript union types, the
 * database check constraints (see `checks.ts`) and the class-validator rules all derive from
 * these arrays, so adding a status is a one-line change (plus a migration for the check).
 */

export const PROFILE_ROLES = ['user', 'admin', 'moderator'] as const;
export type ProfileRole = (typeof PROFILE_ROLES)[number];

export const PROJECT_STATUSES = ['active', 'archived', 'deleted'] as const;
export type ProjectStatus = (typeof PROJECT_STATUSES)[number];

/** Shared by crawl, validation and export jobs. */
export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const EXPORT_FORMATS = ['zip', 'tar', 'csv', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/*
 * The value an unknown status or role becomes when `preflight --fix` repairs a legacy row. Each
 * is the choice that grants nothing and starts nothing, and that a person can change back by
 * hand from the backup (or with `preflight --restore`):
 * - profiles.role → 'user': an unknown role must never turn into more privilege;
 * - projects.status → 'archived': the project and its data stay, but it no longer counts as
 *   active (nothing is deleted, as 'deleted' would suggest);
 * - crawl_jobs.status → 'failed': no worker is running a job in an unknown state; 'failed' is
 *   terminal, so nothing picks it up as pending, and it can be retried.
 */
export const SAFE_PROFILE_ROLE: ProfileRole = 'user';
export const SAFE_PROJECT_STATUS: ProjectStatus = 'archived';
export const SAFE_CRAWL_JOB_STATUS: JobStatus = 'failed';
/** validation_jobs.status and export_jobs.status → 'failed', for the crawl jobs' reason. */
export const SAFE_JOB_STATUS: JobStatus = 'failed';
/**
 * export_jobs.format → 'zip': the column's default, the format a job gets when none is asked
 * for (a database Alembic built may hold others). The backup keeps the original.
 */
export const SAFE_EXPORT_FORMAT: ExportFormat = 'zip';
