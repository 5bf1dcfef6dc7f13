import Cursor from 'pg-cursor';
import type { EntityManager } from 'typeorm';
import {
  obtainCaughtUpConnection,
  type CaughtUpReaderOptions,
  type PooledConnection,
} from '../connection/read-routing';
import { Image } from '../entities/image.entity';
import type { ValidationRules } from '../entities/validation-job.entity';
import { BaseRepository } from './base.repository';
import { hydrate, queryRows } from './sql';

/** One image as the crawler hands it over. */
export interface NewImage {
  originalUrl: string;
  filename: string;
  storageUrl?: string | null;
  width?: number | null;
  height?: number | null;
  fileSize?: number | null;
  format?: string | null;
}

export interface IngestResult {
  inserted: number;
  /**
   * Rows of the batch past the job's max_images: not stored (the crawler may stop). The first
   * rows of a batch are the ones kept.
   */
  trimmed: number;
  totalImages: number;
  downloadedImages: number;
}

export interface ValidityBatch {
  /** Images looked at in this batch. */
  checked: number;
  invalid: number;
  /** Highest image id in the batch: the keyset for the next one. */
  lastId: number | null;
}

/**
 * The SQL of "this image passes the rules", shared by validation (counting) and export
 * (`onlyValid`), so both always agree. A rule on a value the crawler did not record (NULL width,
 * size or format) fails the image: unknown is not valid. No rules: every image passes.
 */
export function validityPredicate(rules: ValidationRules, params: unknown[]): string {
  const conditions: string[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (rules.minWidth !== undefined) conditions.push(`width >= ${bind(rules.minWidth)}::int`);
  if (rules.minHeight !== undefined) conditions.push(`height >= ${bind(rules.minHeight)}::int`);
  if (rules.maxFileSize !== undefined) {
    conditions.push(`file_size <= ${bind(rules.maxFileSize)}::int`);
  }
  if (rules.allowedFormats !== undefined) {
    const formats = rules.allowedFormats.map((f) => f.toLowerCase());
    conditions.push(`lower(format) = ANY(${bind(formats)}::text[])`);
  }
  return conditions.length ? `COALESCE(${conditions.join(' AND ')}, false)` : 'true';
}

const columnArray = <T>(images: NewImage[], pick: (image: NewImage) => T | null | undefined) =>
  images.map((image) => pick(image) ?? null);

export class ImageRepository extends BaseRepository<Image> {
  protected readonly entity = Image;

  /**
   * Inserts any number of images in ONE statement with eight parameters (the columns as arrays,
   * expanded by unnest), whatever the row count: no 65,535-parameter limit, no per-row round
   * trips. The same statement adds the count to the crawl job's total_images and
   * downloaded_images (a data-modifying CTE is all-or-nothing), so rows and counters never
   * disagree.
   */
  async ingest(
    crawlJobId: number,
    images: NewImage[],
    manager?: EntityManager,
  ): Promise<Omit<IngestResult, 'trimmed'>> {
    const [row] = await queryRows<{
      inserted: number;
      total_images: number;
      downloaded_images: number;
    }>(
      this.manager(manager),
      `WITH inserted AS (
         INSERT INTO images (crawl_job_id, original_url, filename, storage_url, width, height, file_size, format)
         SELECT $1, u.original_url, u.filename, u.storage_url, u.width, u.height, u.file_size, u.format
           FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::int[], $8::text[])
             AS u(original_url, filename, storage_url, width, height, file_size, format)
         RETURNING 1
       ), n AS (SELECT count(*)::int AS inserted FROM inserted)
       UPDATE crawl_jobs SET
           total_images = total_images + n.inserted,
           downloaded_images = downloaded_images + n.inserted,
           updated_at = now()
         FROM n
        WHERE crawl_jobs.id = $1
        RETURNING n.inserted, total_images, downloaded_images`,
      [
        crawlJobId,
        columnArray(images, (i) => i.originalUrl),
        columnArray(images, (i) => i.filename),
        columnArray(images, (i) => i.storageUrl),
        columnArray(images, (i) => i.width),
        columnArray(images, (i) => i.height),
        columnArray(images, (i) => i.fileSize),
        columnArray(images, (i) => i.format),
      ],
    );
    return {
      inserted: row.inserted,
      totalImages: row.total_images,
      downloadedImages: row.downloaded_images,
    };
  }

  /**
   * How many of a crawl job's images there are (that pass the rules, when given). On the
   * primary: validation and export workers count what they are about to process and record.
   */
  async countByCrawlJob(
    crawlJobId: number,
    rules?: ValidationRules,
    manager?: EntityManager,
  ): Promise<number> {
    const params: unknown[] = [crawlJobId];
    const filter = rules ? `AND ${validityPredicate(rules, params)}` : '';
    const [row] = await queryRows<{ count: number }>(
      this.manager(manager),
      `SELECT count(*)::int AS count FROM images WHERE crawl_job_id = $1 ${filter}`,
      params,
    );
    return row.count;
  }

  /**
   * A page of a crawl job's images in id order, keyset on id (ix_image_crawl_job_id). Read on a
   * replica.
   */
  async listByCrawlJob(
    crawlJobId: number,
    options: { limit: number; afterId?: number },
    manager?: EntityManager,
  ): Promise<Image[]> {
    return this.replicaRows(
      `SELECT * FROM images WHERE crawl_job_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [crawlJobId, options.afterId ?? 0, options.limit],
      manager,
    );
  }

  /**
   * Checks the next `limit` images after `afterId` against the rules, set-wise in SQL: one
   * statement returns how many were looked at and how many failed. On the primary: the
   * validation worker writes these counts as the job's result.
   */
  async validityBatch(
    crawlJobId: number,
    rules: ValidationRules,
    options: { afterId: number; limit: number },
    manager?: EntityManager,
  ): Promise<ValidityBatch> {
    const params: unknown[] = [crawlJobId, options.afterId, options.limit];
    const valid = validityPredicate(rules, params);
    const [row] = await queryRows<{ checked: number; invalid: number; last_id: number | null }>(
      this.manager(manager),
      `SELECT count(*)::int AS checked,
              count(*) FILTER (WHERE NOT valid)::int AS invalid,
              max(id) AS last_id
         FROM (SELECT id, ${valid} AS valid FROM images
                WHERE crawl_job_id = $1 AND id > $2 ORDER BY id LIMIT $3) batch`,
      params,
    );
    return { checked: row.checked, invalid: row.invalid, lastId: row.last_id };
  }

  /**
   * The connection an export reads a crawl job's rows on (the cursor of `stream`, or a COPY):
   * a replica's, once it has replayed everything committed on the primary before this call, so
   * an export read there is as complete as one read on the primary; the primary's when there is
   * no replica, or when the replica lags more than `maxWaitMs`. The caller releases it (with an
   * error to close it instead of pooling it).
   */
  exportConnection(options: CaughtUpReaderOptions = {}): Promise<PooledConnection> {
    return obtainCaughtUpConnection(this.dataSource, options);
  }

  /** The SQL `stream` runs, for EXPLAIN in tests and for review. */
  streamSql(crawlJobId: number, rules?: ValidationRules): { sql: string; params: unknown[] } {
    const params: unknown[] = [crawlJobId];
    const filter = rules ? `AND ${validityPredicate(rules, params)}` : '';
    return {
      sql: `SELECT * FROM images WHERE crawl_job_id = $1 ${filter} ORDER BY id`,
      params,
    };
  }

  /**
   * Every image of a crawl job (passing the rules, when given) in id order, in batches, with
   * constant memory: a server-side cursor (pg-cursor) on its own connection, read `batchSize`
   * rows at a time, and only when the consumer asks for the next batch (backpressure).
   *
   * It always uses a connection of its own, never a caller's transaction: an open cursor
   * occupies its connection until closed, so other statements on it would queue behind it.
   * That connection is `exportConnection()`'s: a replica that has caught up with the primary.
   * The read runs in one REPEATABLE READ READ ONLY transaction: one snapshot from first to last
   * row. (A protocol-level portal is planned like a plain query, for the whole result, so the
   * plan is the one EXPLAIN of `streamSql` shows.)
   */
  async *stream(
    crawlJobId: number,
    options: { rules?: ValidationRules; batchSize?: number } = {},
  ): AsyncGenerator<Image[]> {
    const { sql, params } = this.streamSql(crawlJobId, options.rules);
    const [client, release] = await this.exportConnection();
    let open = false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      open = true;
      const cursor = client.query(new Cursor(sql, params));
      try {
        for (;;) {
          const rows = await cursor.read(options.batchSize ?? 1000);
          if (rows.length === 0) break;
          yield rows.map((row: Record<string, unknown>) =>
            hydrate(this.dataSource.manager, Image, row),
          );
        }
      } finally {
        await cursor.close();
      }
      await client.query('COMMIT');
      open = false;
    } finally {
      if (open) await client.query('ROLLBACK').catch(() => undefined);
      release();
    }
  }
}
