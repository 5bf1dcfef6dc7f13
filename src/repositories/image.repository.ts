import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { escapeLiteral, type PoolClient, type QueryResult } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import Cursor from 'pg-cursor';
import type { EntityManager } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import {
  obtainCaughtUpConnection,
  type CaughtUpReaderOptions,
  type PooledConnection,
} from '../connection/read-routing';
import { Image } from '../entities/image.entity';
import type { ValidationRules } from '../entities/validation-job.entity';
import { NotFoundError } from '../errors';
import { copyTextLine } from './copy-text';
import {
  CopyOutRows,
  manifestBytes,
  type CopyRowEncoder,
  type ManifestChunk,
} from './copy-out-rows';
import { csvRowEncoder } from './manifest-csv';
import { binaryRowToJsonl } from './manifest-jsonl';
import {
  inlineParams,
  MANIFEST_COLUMNS,
  manifestCsvHeader,
  manifestCsvSql,
  manifestBinarySql,
  type ManifestCsvOptions,
} from './manifest-sql';
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

/**
 * Checks the rows of an ingest one by one as they are encoded (NewImageChecker): `accept` says
 * whether a row passes, `finish` (after the last) throws to store nothing.
 */
export interface IngestRowCheck {
  accept(row: unknown, index: number): boolean;
  finish(): void;
}

export interface IngestOptions {
  /** Join this manager's transaction (and its connection). */
  manager?: EntityManager;
  /**
   * Sees the locked job (status and counters) before anything is written and returns how many
   * of the first rows to keep, or throws to store nothing.
   */
  admit?: (job: LockedIngestJob) => number;
  /**
   * Checks every row (the rows are then unchecked input): a row that fails stores nothing,
   * and `finish`'s error is what `ingest` throws.
   */
  check?: IngestRowCheck;
}

/** What `ImageRepository.ingest`'s `admit` sees of the crawl job it has locked. */
export interface LockedIngestJob {
  status: string;
  maxImages: number;
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

/**
 * An export's read transaction: one snapshot (REPEATABLE READ READ ONLY), and no JIT. An export
 * reads a whole crawl job, so its statements cost far above jit_above_cost and a server built
 * with LLVM (PostgreSQL 15 from Debian's packages, among others) compiles them first, yet they
 * only project columns: on PostgreSQL 15 the compilation took 0.2-0.35 s of a 1,000,000-row
 * COPY's 0.75-1.2 s (docs/benchmarks.md, "Measured changes"). One round trip with the BEGIN.
 */
const BEGIN_EXPORT_SNAPSHOT =
  'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off';

/**
 * The columns ingest writes, in the order copyLines writes them: the images table's columns
 * (the manifest's), without the id the sequence assigns.
 */
const INGEST_COLUMNS = MANIFEST_COLUMNS.filter((column) => column !== 'id');

/**
 * Rows per chunk of COPY data. The server stores rows several times slower than they are
 * checked and encoded here, and starts on a chunk only once it has arrived whole: 250-row
 * chunks had 10,000-row ingests at 0.84-0.85x of a plain COPY's speed where 1,000-row ones
 * had 0.81-0.82x (4,000: 0.68x).
 */
const COPY_CHUNK_ROWS = 250;

/**
 * The first `count` images as COPY text, COPY_CHUNK_ROWS rows per chunk. With `check`, each row is
 * checked as it is encoded (so the checks run while the server stores the chunks before it),
 * the rows past `count` too; from the first row that fails, nothing more is sent, and `finish`
 * throws at the end, which aborts the COPY.
 */
function* copyLines(
  crawlJobId: number,
  images: readonly NewImage[],
  count: number,
  check?: IngestRowCheck,
): Generator<string> {
  const job = String(crawlJobId);
  let chunk = '';
  let lines = 0;
  let failed = false;
  for (let index = 0; index < count; index++) {
    const image = images[index];
    if (check && !check.accept(image, index)) failed = true;
    if (failed) continue;
    chunk += `${job}\t${copyTextLine([
      image.originalUrl,
      image.filename,
      image.storageUrl,
      image.width,
      image.height,
      image.fileSize,
      image.format,
    ])}`;
    if (++lines === COPY_CHUNK_ROWS) {
      yield chunk;
      chunk = '';
      lines = 0;
    }
  }
  if (check) checkRows(check, images, count);
  if (chunk) yield chunk;
}

/** Checks the rows from `from` on (not stored: past max_images), then finishes the check. */
function checkRows(check: IngestRowCheck, images: readonly unknown[], from: number): void {
  for (let index = from; index < images.length; index++) check.accept(images[index], index);
  check.finish();
}

/** One image's file, as an archive export needs it. */
export interface ExportFileRow {
  id: number;
  filename: string;
  storageUrl: string | null;
}

/** A crawl job's exported images as seen by one snapshot; see ImageRepository.readExport. */
export interface ExportSnapshot {
  /**
   * How many images the export holds. Counted on a second connection in the same snapshot
   * while the manifest streams (without replicas): call it first, await it when needed.
   */
  count(): Promise<number>;
  /** The csv manifest, header first, as COPY streams it. Read it to the end (or fail). */
  csv(options?: ManifestCsvOptions): Readable;
  /** The jsonl manifest, one image per line, as COPY streams it. Read it to the end (or fail). */
  jsonl(): Readable;
  /** The jsonl manifest's size in bytes (a pass over the same rows). */
  jsonlBytes(): Promise<number>;
  /**
   * csv() as an object-mode stream of ManifestChunks: the bytes, and where each row ends, for
   * a reader that counts rows (progress) without scanning the bytes.
   */
  csvChunks(options?: ManifestCsvOptions): Readable;
  /** jsonl() as an object-mode stream of ManifestChunks. */
  jsonlChunks(): Readable;
  /**
   * The images' files in id order, `batchSize` rows per read (default 5000). The snapshot's
   * other reads (its manifests) may run while this is open, between two batches.
   */
  files(batchSize?: number): AsyncGenerator<ExportFileRow[]>;
}

export class ImageRepository extends BaseRepository<Image> {
  protected readonly entity = Image;

  /**
   * Inserts any number of images with COPY FROM STDIN, the fastest way into PostgreSQL, and adds
   * the count to the crawl job's total_images and downloaded_images in the same transaction, so
   * rows and counters never disagree (all or nothing). Raw rows: checking them is the
   * service's job (CrawlJobService.ingestImages).
   *
   * Joins the manager's transaction when it has one (`options.manager`, or an EntityManager
   * as the third argument); otherwise runs its own, locking the job's row first so concurrent
   * ingests queue on its counters. Three round trips whatever the row count: BEGIN with the
   * lock, the COPY, the counter UPDATE with COMMIT.
   *
   * `options.admit` sees the locked job before anything is written: ingestImages checks
   * "running" and the room under max_images there, in the lock's round trip rather than in one
   * of its own, so two concurrent batches cannot both take the last room. `options.check`
   * checks each row as it is encoded for COPY, while the server stores the rows before it.
   */
  async ingest(
    crawlJobId: number,
    images: readonly NewImage[],
    options: IngestOptions | EntityManager = {},
  ): Promise<Omit<IngestResult, 'trimmed'>> {
    if (!Number.isSafeInteger(crawlJobId)) {
      throw new TypeError(`crawl job id must be an integer, got ${String(crawlJobId)}`);
    }
    // The released form passed an EntityManager as the third argument.
    const { manager, admit, check }: IngestOptions =
      typeof (options as EntityManager).transaction === 'function'
        ? { manager: options as EntityManager }
        : (options as IngestOptions);
    const runner = manager?.queryRunner ?? this.dataSource.createQueryRunner();
    const client = (await runner.connect()) as PoolClient;
    const ownTransaction = !runner.isTransactionActive;
    try {
      // Simple protocol: BEGIN and the lock in one round trip (the id is an integer). The
      // job's row lock: NO KEY UPDATE when the job is read to admit rows (as every job update
      // does), the row's full lock otherwise (as ingest always has).
      const lock = admit
        ? `SELECT status, max_images, total_images, downloaded_images FROM crawl_jobs
            WHERE id = ${crawlJobId} FOR NO KEY UPDATE`
        : `SELECT 1 FROM crawl_jobs WHERE id = ${crawlJobId} FOR UPDATE`;
      let locked: QueryResult | undefined;
      if (ownTransaction) {
        [, locked] = (await client.query(`BEGIN; ${lock}`)) as unknown as QueryResult[];
      } else if (admit) {
        locked = await client.query(lock);
      }
      // Bad rows win over a missing or refused job, as if the rows had been checked first.
      const refuse = (error: unknown): never => {
        if (check) checkRows(check, images, 0);
        throw error;
      };
      if (locked && locked.rows.length === 0) refuse(new NotFoundError('crawl job', crawlJobId));
      let kept = images.length;
      if (admit && locked) {
        const row = locked.rows[0] as Record<string, unknown>;
        const job: LockedIngestJob = {
          status: row.status as string,
          maxImages: row.max_images as number,
          totalImages: row.total_images as number,
          downloadedImages: row.downloaded_images as number,
        };
        let admitted = 0;
        try {
          admitted = admit(job);
        } catch (error) {
          refuse(error);
        }
        kept = Math.min(images.length, Math.max(0, admitted));
        if (kept === 0) {
          if (check) checkRows(check, images, 0);
          if (ownTransaction) await client.query('COMMIT');
          return {
            inserted: 0,
            totalImages: job.totalImages,
            downloadedImages: job.downloadedImages,
          };
        }
      }
      if (kept > 0) {
        await pipeline(
          Readable.from(copyLines(crawlJobId, images, kept, check)),
          client.query(copyFrom(`COPY images (${INGEST_COLUMNS.join(', ')}) FROM STDIN`)),
        );
      }
      const update = `UPDATE crawl_jobs SET total_images = total_images + ${kept},
              downloaded_images = downloaded_images + ${kept}, updated_at = now()
        WHERE id = ${crawlJobId} RETURNING total_images, downloaded_images`;
      const updated = ownTransaction
        ? ((await client.query(`${update}; COMMIT`)) as unknown as QueryResult[])[0]
        : await client.query(update);
      const [counters] = updated.rows as Array<{ total_images: number; downloaded_images: number }>;
      if (!counters) throw new NotFoundError('crawl job', crawlJobId);
      return {
        inserted: kept,
        totalImages: counters.total_images,
        downloadedImages: counters.downloaded_images,
      };
    } catch (error) {
      if (ownTransaction) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      if (!manager?.queryRunner) await runner.release();
    }
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
  streamSql(
    crawlJobId: number,
    rules?: ValidationRules,
    columns: readonly string[] = ['*'],
    order: 'by id' | 'none' = 'by id',
  ): { sql: string; params: unknown[] } {
    const params: unknown[] = [crawlJobId];
    const filter = rules ? `AND ${validityPredicate(rules, params)}` : '';
    const orderBy = order === 'by id' ? ' ORDER BY id' : '';
    return {
      sql: `SELECT ${columns.join(', ')} FROM images WHERE crawl_job_id = $1 ${filter}${orderBy}`,
      params,
    };
  }

  /**
   * Runs `work` with a read-only view of one crawl job's images (passing the rules, when given)
   * for an export: its manifest as COPY streams, its files' rows, its count, all from ONE
   * snapshot (REPEATABLE READ READ ONLY), so an archive's manifest and files always agree.
   *
   * The export's one place that picks a connection: its own, never a caller's transaction (a
   * COPY or an open cursor occupies a connection until it ends), from `exportConnection()`: a
   * replica that has caught up with the primary, when there is one. A COPY left unfinished (the
   * consumer stopped reading) cannot be ended from the client, so that connection is closed
   * instead of going back to the pool.
   */
  async readExport<T>(
    crawlJobId: number,
    rules: ValidationRules | undefined,
    work: (snapshot: ExportSnapshot) => Promise<T>,
  ): Promise<T> {
    const { sql, params } = this.streamSql(crawlJobId, rules, MANIFEST_COLUMNS);
    const rows = inlineParams(sql, params);
    // The count needs no order: counting the ordered rows made PostgreSQL walk the primary key
    // over the whole table (300 ms for 1,000,000 rows, a third of the COPY); unordered, it is
    // an index-only scan of ix_image_crawl_job_id.
    const unordered = this.streamSql(crawlJobId, rules, ['id'], 'none');
    const countSql = `SELECT count(*)::int AS value FROM (${inlineParams(unordered.sql, unordered.params)}) m`;
    const [client, release] = await this.exportConnection();
    let unfinishedCopy: Readable | undefined;
    const copy = (statement: string, encoder: CopyRowEncoder, prefix?: string): Readable => {
      const stream = client.query(
        new CopyOutRows(statement, encoder, { prefix: prefix ? Buffer.from(prefix) : undefined }),
      );
      // Errors reach the consumer through its own listener; this one keeps a late error (the
      // connection closed under an abandoned COPY) from being an uncaught 'error' event.
      stream.on('error', () => undefined);
      unfinishedCopy = stream;
      stream.once('end', () => {
        if (unfinishedCopy === stream) unfinishedCopy = undefined;
      });
      return stream;
    };
    const scalar = async (statement: string): Promise<number> => {
      const result = await client.query<{ value: string | number }>(statement);
      return Number(result.rows[0].value);
    };
    let cursors = 0;
    let counting: Promise<number> | undefined;
    const snapshot: ExportSnapshot = {
      count: () => {
        if (!counting) {
          counting = this.hasReplicas() ? scalar(countSql) : this.countBeside(client, countSql);
          counting.catch(() => undefined); // a caller that never awaits it: no unhandled rejection
        }
        return counting;
      },
      csvChunks: (options) =>
        copy(
          manifestCsvSql(rows, options),
          csvRowEncoder(options?.formulaProtection !== false),
          manifestCsvHeader(options),
        ),
      jsonlChunks: () => copy(manifestBinarySql(rows), binaryRowToJsonl()),
      csv: (options) => manifestBytes(snapshot.csvChunks(options)),
      jsonl: () => manifestBytes(snapshot.jsonlChunks()),
      jsonlBytes: async () => {
        let bytes = 0;
        for await (const chunk of snapshot.jsonlChunks() as AsyncIterable<ManifestChunk>) {
          bytes += chunk.bytes.length;
        }
        return bytes;
      },
      files: async function* (batchSize = 5000) {
        // A cursor declared in SQL, not pg-cursor's portal: other statements of the snapshot
        // (the manifest's COPY) can run between two FETCHes, so an archive export reads its
        // first files while its manifest streams.
        const cursor = `export_files_${++cursors}`;
        await client.query(
          `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT id, filename, storage_url FROM (${rows}) m`,
        );
        type Row = { id: number; filename: string; storage_url: string | null };
        const read = () =>
          client.query<Row>(`FETCH ${batchSize} FROM ${cursor}`).then((result) => result.rows);
        // The next batch is fetched while the consumer works on this one.
        let next = read();
        try {
          for (;;) {
            const batch = await next;
            if (batch.length === 0) return;
            next = batch.length < batchSize ? Promise.resolve([]) : read();
            next.catch(() => undefined); // awaited on the next turn
            yield batch.map((r) => ({ id: r.id, filename: r.filename, storageUrl: r.storage_url }));
          }
        } finally {
          await next.catch(() => undefined);
          await client.query(`CLOSE ${cursor}`).catch(() => undefined);
        }
      },
    };
    let broken: Error | undefined;
    try {
      await client.query(BEGIN_EXPORT_SNAPSHOT);
      const result = await work(snapshot);
      if (unfinishedCopy) throw new Error('an export COPY was left unfinished');
      // A count beside the COPY imports this transaction's snapshot: it stays open until then,
      // whether or not `work` read the count.
      await counting?.catch(() => undefined);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (unfinishedCopy) {
        unfinishedCopy.destroy();
        broken = error instanceof Error ? error : new Error(String(error));
      } else {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken = rollbackError;
        });
      }
      throw error;
    } finally {
      release(broken);
    }
  }

  /**
   * `countSql` run on a second connection of the primary's pool, in the snapshot of `client`'s
   * transaction (exported, then imported), so the count runs beside the manifest's COPY on the
   * server's other core instead of before it: on PostgreSQL 15 it was 60 ms of a
   * 1,000,000-row export's 0.7 s. Both connections are the primary's (a snapshot is imported
   * on the server that exported it), and the exporting transaction stays open until the count
   * is read: readExport waits for it before COMMIT.
   */
  private async countBeside(client: PoolClient, countSql: string): Promise<number> {
    const exported = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
    const driver = this.dataSource.driver as PostgresDriver;
    const [other, release] = (await driver.obtainMasterConnection()) as PooledConnection;
    let broken: Error | undefined;
    try {
      const results = (await other.query(
        `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ` +
          `SET TRANSACTION SNAPSHOT ${escapeLiteral(exported.rows[0].id)}; SET LOCAL jit = off; ` +
          `${countSql}; COMMIT`,
      )) as unknown as QueryResult<{ value: number }>[];
      return Number(results[3].rows[0].value);
    } catch (error) {
      broken = error as Error; // its transaction may be open: closed, not pooled
      throw error;
    } finally {
      release(broken);
    }
  }

  /** Whether the DataSource reads from replicas (then an export's count runs on its connection). */
  private hasReplicas(): boolean {
    return (this.dataSource.options as { replication?: unknown }).replication !== undefined;
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
      await client.query(BEGIN_EXPORT_SNAPSHOT);
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
