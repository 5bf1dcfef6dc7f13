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
