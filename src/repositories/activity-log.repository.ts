import type { EntityManager } from 'typeorm';
import { ActivityLog } from '../entities/activity-log.entity';
import { MAX_ID } from '../entities/columns';
import { ValidationError } from '../errors';
import { BaseRepository } from './base.repository';
import { decodeCursor, encodeCursor, hydrate, queryRows } from './sql';

/** Every action the services record, defined once. */
export const ACTIVITY_ACTIONS = [
  'project.created',
  'project.archived',
  'project.deleted',
  'crawl_job.created',
  'crawl_job.started',
  'crawl_job.completed',
  'crawl_job.cancelled',
  'validation.requested',
  'export.requested',
  'export.downloaded',
] as const;
export type ActivityAction = (typeof ACTIVITY_ACTIONS)[number];

export interface ActivityEntry {
  userId: string | null;
  action: ActivityAction;
  resourceType: 'project' | 'crawl_job' | 'validation_job' | 'export_job';
  resourceId: number | string;
  metadata?: Record<string, unknown>;
}

export interface KeysetPage<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface KeysetQuery {
  limit: number;
  cursor?: string;
}

/** What a nextCursor holds: the row's timestamp as `to_char` wrote it, and its id. */
const CURSOR_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/;

/**
 * A cursor this repository wrote, or a ValidationError: a cursor is opaque, so anything that is
 * not exactly what `page` encodes (a real UTC timestamp with microseconds, an int4 id) is
 * refused here rather than by PostgreSQL's timestamptz or int parser.
 */
function parseActivityCursor(cursor: string): [string, number] {
  const [timestamp, id, ...rest] = decodeCursor(cursor) ?? [];
  const parts = typeof timestamp === 'string' ? CURSOR_TIMESTAMP.exec(timestamp) : null;
  // Date rolls 31 February over into March: a real date reads back unchanged.
  const millis = parts ? `${parts[0].slice(0, 23)}Z` : '';
  const real = parts !== null && Number(parts[1]) >= 1 && isoRoundTrips(millis);
  const validId = typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= MAX_ID;
  if (!real || rest.length > 0 || !validId) {
    throw new ValidationError({ cursor: ['cursor must be the nextCursor of a previous page'] });
  }
  return [timestamp as string, id];
}

function isoRoundTrips(iso: string): boolean {
  const date = new Date(iso);
  return !Number.isNaN(date.getTime()) && date.toISOString() === iso;
}

export class ActivityLogRepository extends BaseRepository<ActivityLog> {
  protected readonly entity = ActivityLog;

  /** Call with the manager of the transaction that makes the change it records. */
  async record(entry: ActivityEntry, manager?: EntityManager): Promise<void> {
    await queryRows(
      this.manager(manager),
      `INSERT INTO activity_logs (user_id, action, resource_type, resource_id, metadata)
       VALUES ($1, $2, $3, $4, $5)`,
      [
        entry.userId,
        entry.action,
        entry.resourceType,
        String(entry.resourceId),
        entry.metadata ? JSON.stringify(entry.metadata) : null,
      ],
    );
  }

  /** Everyone's activity, newest first (ix_activity_log_timestamp). Read on a replica. */
  recent(page: KeysetQuery, manager?: EntityManager): Promise<KeysetPage<ActivityLog>> {
    return this.page(null, page, manager);
  }

  /** One user's activity, newest first (ix_activity_log_user_id). Read on a replica. */
  recentByUser(
    userId: string,
    page: KeysetQuery,
    manager?: EntityManager,
  ): Promise<KeysetPage<ActivityLog>> {
    return this.page(userId, page, manager);
  }

  /**
   * Keyset pagination on (timestamp, id) descending: the cursor carries the last row's exact
   * timestamp as UTC ISO text with microseconds (a JS Date would round them away) and its id, so
   * a deep page costs what the first one does, unlike OFFSET.
   */
  private async page(
    userId: string | null,
    { limit, cursor }: KeysetQuery,
    manager?: EntityManager,
  ): Promise<KeysetPage<ActivityLog>> {
    const m = this.manager(manager);
    const params: unknown[] = [limit + 1];
    const where: string[] = [];
    if (userId !== null) {
      params.push(userId);
      where.push(`user_id = $${params.length}`);
    }
    if (cursor !== undefined) {
      const [timestamp, id] = parseActivityCursor(cursor);
      params.push(timestamp, id);
      const t = `$${params.length - 1}::timestamptz`;
      const i = `$${params.length}::int`;
      where.push(`"timestamp" <= ${t} AND ("timestamp" < ${t} OR id < ${i})`);
    }
    const rows = await queryRows<Record<string, unknown> & { cursor_ts: string }>(
      m,
      `SELECT *, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts
         FROM activity_logs
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY "timestamp" DESC, id DESC
        LIMIT $1`,
      params,
      'replica',
    );
    const more = rows.length > limit;
    const pageRows = more ? rows.slice(0, limit) : rows;
    const last = pageRows.at(-1);
    return {
      items: pageRows.map((row) => hydrate(m, this.entity, row)),
      nextCursor: more && last ? encodeCursor([last.cursor_ts, last.id as number]) : null,
    };
  }
}
