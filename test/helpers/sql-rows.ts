import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

/**
 * Rows for integration tests, inserted with plain SQL so that they exercise the database's own
 * defaults and constraints. Each factory takes overrides and returns the new row's id.
 */

async function insert(
  dataSource: DataSource,
  table: string,
  values: Record<string, unknown>,
): Promise<number> {
  const columns = Object.keys(values);
  const params = columns.map((column) => {
    const value = values[column];
    return value !== null && typeof value === 'object' ? JSON.stringify(value) : value;
  });
  const [row]: { id: number }[] = await dataSource.query(
    `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')})
     VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
    params,
  );
  return row.id;
}

/** The seven tables of SPEC.md, parents first. */
export const PIXCRAWLER_TABLES = [
  'profiles',
  'projects',
  'crawl_jobs',
  'images',
  'activity_logs',
  'validation_jobs',
  'export_jobs',
] as const;

export async function createProfile(
  dataSource: DataSource,
  values: Record<string, unknown> = {},
): Promise<string> {
  const id = randomUUID();
  await insert(dataSource, 'profiles', { id, email: `${id}@example.com`, ...values });
  return id;
}

export const createProject = (ds: DataSource, userId: string, values = {}) =>
  insert(ds, 'projects', { name: 'Cats', user_id: userId, ...values });

export const createCrawlJob = (ds: DataSource, projectId: number, values = {}) =>
  insert(ds, 'crawl_jobs', { project_id: projectId, name: 'Cats', keywords: ['cat'], ...values });

export const createImage = (ds: DataSource, crawlJobId: number, values = {}) =>
  insert(ds, 'images', {
    crawl_job_id: crawlJobId,
    original_url: 'https://example.com/cat.jpg',
    filename: 'cat.jpg',
    ...values,
  });

export const createValidationJob = (ds: DataSource, crawlJobId: number, values = {}) =>
  insert(ds, 'validation_jobs', { crawl_job_id: crawlJobId, name: 'Sizes', ...values });

export const createExportJob = (ds: DataSource, crawlJobId: number, userId: string, values = {}) =>
  insert(ds, 'export_jobs', { crawl_job_id: crawlJobId, user_id: userId, name: 'Set', ...values });

export const createActivityLog = (ds: DataSource, userId: string | null, values = {}) =>
  insert(ds, 'activity_logs', { user_id: userId, action: 'project.created', ...values });

/** A profile with one of everything below it. */
export async function createProfileTree(dataSource: DataSource) {
  const userId = await createProfile(dataSource);
  const projectId = await createProject(dataSource, userId);
  const crawlJobId = await createCrawlJob(dataSource, projectId);
  const imageId = await createImage(dataSource, crawlJobId);
  const validationJobId = await createValidationJob(dataSource, crawlJobId);
  const exportJobId = await createExportJob(dataSource, crawlJobId, userId);
  const activityLogId = await createActivityLog(dataSource, userId);
  return { userId, projectId, crawlJobId, imageId, validationJobId, exportJobId, activityLogId };
}
