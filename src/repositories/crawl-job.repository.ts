import type { EntityManager } from 'typeorm';
import { CrawlJob } from '../entities/crawl-job.entity';
import type { JobStatus } from '../entities/value-sets';
import { NotFoundError } from '../errors';
import { BaseRepository } from './base.repository';
import { JobStateMachine, type JobTransition } from './job-lifecycle';
import type { OffsetQuery } from './project.repository';
import { queryRows } from './sql';

export interface ChunkProgress {
  startedChunks?: number;
  completedChunks?: number;
  failedChunks?: number;
  progress?: number;
}

export class CrawlJobRepository extends BaseRepository<CrawlJob> {
  protected readonly entity = CrawlJob;

  readonly lifecycle = new JobStateMachine<CrawlJob>({
    entity: CrawlJob,
    table: 'crawl_jobs',
    resource: 'crawl job',
    hasErrorMessage: false,
    resetOnRetry: [],
  });

  async insert(
    job: { projectId: number; name: string; keywords: string[]; maxImages?: number },
    manager?: EntityManager,
  ): Promise<CrawlJob> {
    return this.insertedRow(
      `INSERT INTO crawl_jobs (project_id, name, keywords, max_images)
       VALUES ($1, $2, $3::jsonb, COALESCE($4, 1000)) RETURNING *`,
      [job.projectId, job.name, JSON.stringify(job.keywords), job.maxImages ?? null],
      manager,
    );
  }

  /**
   * On the primary: workers look up the job they are writing to, and a crawl job created a
   * moment ago may not have reached a replica yet.
   */
  async findById(id: number, manager?: EntityManager): Promise<CrawlJob | null> {
    return this.row(`SELECT * FROM crawl_jobs WHERE id = $1`, [id], manager);
  }

  /**
   * The crawl job if the user owns its project (and the project is not deleted). The one
   * ownership rule for crawl jobs and everything hanging off them (validation jobs, exports).
   * Read on a replica unless the caller's transaction says otherwise.
   */
  async findOwned(userId: string, id: number, manager?: EntityManager): Promise<CrawlJob | null> {
    return this.replicaRow(
      `SELECT cj.* FROM crawl_jobs cj JOIN projects p ON p.id = cj.project_id
        WHERE cj.id = $1 AND p.user_id = $2 AND p.status <> 'deleted'`,
      [id, userId],
      manager,
    );
  }

  async getOwned(userId: string, id: number, manager?: EntityManager): Promise<CrawlJob> {
    const job = await this.findOwned(userId, id, manager);
    if (!job) throw new NotFoundError('crawl job', id);
    return job;
  }

  /** The owner of a crawl job's project, for activity rows written by worker calls. */
  async ownerOf(id: number, manager?: EntityManager): Promise<string | null> {
    const [row] = await queryRows<{ user_id: string }>(
      this.manager(manager),
      `SELECT p.user_id FROM crawl_jobs cj JOIN projects p ON p.id = cj.project_id WHERE cj.id = $1`,
      [id],
    );
    return row?.user_id ?? null;
  }

  /**
   * A project's jobs, optionally of one status, newest first (ix_crawl_job_project_status).
   * Read on a replica.
   */
  async listByProject(
    projectId: number,
    options: OffsetQuery & { status?: JobStatus },
    manager?: EntityManager,
  ): Promise<CrawlJob[]> {
    return this.replicaRows(
      `SELECT * FROM crawl_jobs
        WHERE project_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY id DESC LIMIT $3 OFFSET $4`,
      [projectId, options.status ?? null, options.limit, options.offset],
      manager,
    );
  }

  /**
   * Jobs of one status, oldest first, keyset on id (ix_crawl_job_status). For schedulers. Read
   * on a replica, so up to its lag behind: act on a job through a transition, which runs on the
   * primary and checks the status again.
   */
  async listByStatus(
    status: JobStatus,
    options: { limit: number; afterId?: number },
    manager?: EntityManager,
  ): Promise<CrawlJob[]> {
    return this.replicaRows(
      `SELECT * FROM crawl_jobs WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [status, options.afterId ?? 0, options.limit],
      manager,
    );
  }

  /**
   * Applies a chunk report as increments in one UPDATE (never read-modify-write), and only
   * while the job runs. A count that would go negative trips the table's check constraint.
   */
  async recordChunkProgress(
    id: number,
    report: ChunkProgress,
    manager?: EntityManager,
  ): Promise<CrawlJob | null> {
    return this.row(
      `UPDATE crawl_jobs SET
          total_chunks = total_chunks + $2,
          active_chunks = active_chunks + $2 - $3 - $4,
          completed_chunks = completed_chunks + $3,
          failed_chunks = failed_chunks + $4,
          progress = COALESCE($5, progress),
          updated_at = now()
        WHERE id = $1 AND status = 'running' RETURNING *`,
      [
        id,
        report.startedChunks ?? 0,
        report.completedChunks ?? 0,
        report.failedChunks ?? 0,
        report.progress ?? null,
      ],
      manager,
    );
  }

  /**
   * The job, locked (FOR NO KEY UPDATE) until the caller's transaction ends.
   * @deprecated ingestImages no longer uses it: ImageRepository.ingest takes this lock itself
   * (its `admit` callback sees the locked job), in the same round trip as BEGIN.
   */
  async lockForIngest(id: number, manager: EntityManager): Promise<CrawlJob | null> {
    return this.row(`SELECT * FROM crawl_jobs WHERE id = $1 FOR NO KEY UPDATE`, [id], manager);
  }

  async setValidImages(id: number, validImages: number, manager?: EntityManager): Promise<void> {
    await queryRows(
      this.manager(manager),
      `UPDATE crawl_jobs SET valid_images = $2, updated_at = now() WHERE id = $1`,
      [id, validImages],
    );
  }

  transition(id: number, transition: JobTransition, manager?: EntityManager): Promise<CrawlJob> {
    return this.lifecycle.transition(this.manager(manager), id, transition);
  }

  recoverStale(leaseSeconds: number, manager?: EntityManager): Promise<CrawlJob[]> {
    return this.lifecycle.recoverStale(this.manager(manager), leaseSeconds);
  }
}
