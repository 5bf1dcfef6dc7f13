import type { EntityManager } from 'typeorm';
import { ExportJob, type ExportOptions } from '../entities/export-job.entity';
import { MAX_ID } from '../entities/columns';
import type { ExportFormat, JobStatus } from '../entities/value-sets';
import { NotFoundError } from '../errors';
import { BaseRepository } from './base.repository';
import { JobStateMachine, type ExtraColumns, type JobTransition } from './job-lifecycle';
import { queryRows } from './sql';

/** What a finished export produced: the completing statement writes it. */
export interface ExportResult {
  exportedImages: number;
  /** Bytes of the export file. */
  fileSize: number;
  downloadUrl: string;
  expiresAt: Date;
}

export class ExportJobRepository extends BaseRepository<ExportJob> {
  protected readonly entity = ExportJob;

  readonly lifecycle = new JobStateMachine<ExportJob>({
    entity: ExportJob,
    table: 'export_jobs',
    resource: 'export job',
    hasErrorMessage: true,
    resetOnRetry: [
      'total_images = 0',
      'exported_images = 0',
      'file_size = NULL',
      'download_url = NULL',
      'expires_at = NULL',
    ],
  });

  async insert(
    job: {
      crawlJobId: number;
      userId: string;
      name: string;
      format: ExportFormat;
      options: ExportOptions;
    },
    manager?: EntityManager,
  ): Promise<ExportJob> {
    return this.insertedRow(
      `INSERT INTO export_jobs (crawl_job_id, user_id, name, format, export_options)
       VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING *`,
      [job.crawlJobId, job.userId, job.name, job.format, JSON.stringify(job.options)],
      manager,
    );
  }

  /** On the primary: the export worker re-reads the job it is running. */
  async findById(id: number, manager?: EntityManager): Promise<ExportJob | null> {
    return this.row(`SELECT * FROM export_jobs WHERE id = $1`, [id], manager);
  }

  /** An export is the requesting user's own (export_jobs.user_id). Read on a replica. */
  async findOwned(userId: string, id: number, manager?: EntityManager): Promise<ExportJob | null> {
    return this.replicaRow(
      `SELECT * FROM export_jobs WHERE id = $1 AND user_id = $2`,
      [id, userId],
      manager,
    );
  }

  async getOwned(userId: string, id: number, manager?: EntityManager): Promise<ExportJob> {
    const job = await this.findOwned(userId, id, manager);
    if (!job) throw new NotFoundError('export job', id);
    return job;
  }

  /** A user's exports, newest first, keyset on id (ix_export_job_user_id). Read on a replica. */
  async listByUser(
    userId: string,
    options: { limit: number; beforeId?: number },
    manager?: EntityManager,
  ): Promise<ExportJob[]> {
    return this.replicaRows(
      `SELECT * FROM export_jobs WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
      [userId, options.beforeId ?? 2_147_483_647, options.limit],
      manager,
    );
  }

  /** A crawl job's exports, newest first (ix_export_job_crawl_job_id). Read on a replica. */
  async listByCrawlJob(crawlJobId: number, manager?: EntityManager): Promise<ExportJob[]> {
    return this.replicaRows(
      `SELECT * FROM export_jobs WHERE crawl_job_id = $1 ORDER BY id DESC`,
      [crawlJobId],
      manager,
    );
  }

  /** Progress of a running export (and its heartbeat); false once it no longer runs. */
  async recordProgress(
    id: number,
    progress: { totalImages: number; exportedImages: number; progress: number },
    manager?: EntityManager,
  ): Promise<boolean> {
    const rows = await queryRows(
      this.manager(manager),
      `UPDATE export_jobs SET total_images = $2, exported_images = $3, progress = $4,
              updated_at = now()
        WHERE id = $1 AND status = 'running' RETURNING id`,
      [id, progress.totalImages, progress.exportedImages, progress.progress],
    );
    return rows.length === 1;
  }

  /**
   * Completed exports past expires_at that still have a file (download_url set). On the
   * primary: the purge loop calls it again right after clearing a batch, and a lagging replica
   * would hand back the exports it has just cleared.
   */
  async listExpired(limit: number, manager?: EntityManager): Promise<ExportJob[]> {
    return this.rows(
      `SELECT * FROM export_jobs
        WHERE expires_at < now() AND download_url IS NOT NULL
        ORDER BY expires_at LIMIT $1`,
      [limit],
      manager,
    );
  }

  /**
   * For the given ids: status, format and whether a download is recorded (orphan sweeping). On
   * the primary: a lagging replica could call the file of an export completed a moment ago an
   * orphan, and the sweep would delete it.
   */
  async fileStates(
    ids: number[],
    manager?: EntityManager,
  ): Promise<Map<number, { status: JobStatus; format: ExportFormat; hasDownload: boolean }>> {
    const rows = await queryRows<{
      id: number;
      status: JobStatus;
      format: ExportFormat;
      has_download: boolean;
    }>(
      this.manager(manager),
      `SELECT id, status, format, download_url IS NOT NULL AS has_download
         FROM export_jobs WHERE id = ANY($1::int[])`,
      [ids.filter((id) => id <= MAX_ID)],
    );
    return new Map(
      rows.map((row) => [
        row.id,
        { status: row.status, format: row.format, hasDownload: row.has_download },
      ]),
    );
  }

  /**
   * Marks an export's file as gone. The status set has no 'expired', so the status stays
   * (completed) and the missing download_url and file_size, with expires_at in the past, say
   * that the file was purged.
   */
  async clearDownload(id: number, manager?: EntityManager): Promise<void> {
    await queryRows(
      this.manager(manager),
      `UPDATE export_jobs SET download_url = NULL, file_size = NULL, updated_at = now() WHERE id = $1`,
      [id],
    );
  }

  /**
   * Completes a running export with what it produced, in one statement. IllegalTransitionError
   * when it no longer runs.
   */
  complete(id: number, result: ExportResult, manager?: EntityManager): Promise<ExportJob> {
    return this.lifecycle.transition(this.manager(manager), id, 'complete', {
      extra: {
        total_images: result.exportedImages,
        exported_images: result.exportedImages,
        file_size: result.fileSize,
        download_url: result.downloadUrl,
        expires_at: result.expiresAt,
      },
    });
  }

  claimNext(manager?: EntityManager): Promise<ExportJob | null> {
    return this.lifecycle.claimNext(this.manager(manager));
  }

  /** See JobStateMachine.heartbeat: false once the job no longer runs. */
  heartbeat(id: number, manager?: EntityManager): Promise<boolean> {
    return this.lifecycle.heartbeat(this.manager(manager), id);
  }

  /** Wakes listening workers when the surrounding transaction commits (JobStateMachine.notifyPending). */
  notifyPending(manager?: EntityManager): Promise<void> {
    return this.lifecycle.notifyPending(this.manager(manager));
  }

  transition(
    id: number,
    transition: JobTransition,
    options: {
      errorMessage?: string;
      /** @deprecated Complete an export with `complete(id, result)`; column names stay in the repository. */
      extra?: ExtraColumns;
    } = {},
    manager?: EntityManager,
  ): Promise<ExportJob> {
    return this.lifecycle.transition(this.manager(manager), id, transition, options);
  }

  recoverStale(leaseSeconds: number, manager?: EntityManager): Promise<ExportJob[]> {
    return this.lifecycle.recoverStale(this.manager(manager), leaseSeconds);
  }
}
