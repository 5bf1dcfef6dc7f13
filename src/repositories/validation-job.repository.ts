import type { EntityManager } from 'typeorm';
import { ValidationJob, type ValidationRules } from '../entities/validation-job.entity';
import { NotFoundError } from '../errors';
import { BaseRepository } from './base.repository';
import { JobStateMachine, type JobTransition } from './job-lifecycle';
import { queryRows } from './sql';

export class ValidationJobRepository extends BaseRepository<ValidationJob> {
  protected readonly entity = ValidationJob;

  readonly lifecycle = new JobStateMachine<ValidationJob>({
    entity: ValidationJob,
    table: 'validation_jobs',
    resource: 'validation job',
    hasErrorMessage: true,
    resetOnRetry: ['total_images = 0', 'validated_images = 0', 'invalid_images = 0'],
  });

  async insert(
    job: { crawlJobId: number; name: string; rules: ValidationRules },
    manager?: EntityManager,
  ): Promise<ValidationJob> {
    return this.insertedRow(
      `INSERT INTO validation_jobs (crawl_job_id, name, validation_rules)
       VALUES ($1, $2, $3::jsonb) RETURNING *`,
      [job.crawlJobId, job.name, JSON.stringify(job.rules)],
      manager,
    );
  }

  /** On the primary: the validation worker re-reads the job it is running. */
  async findById(id: number, manager?: EntityManager): Promise<ValidationJob | null> {
    return this.row(`SELECT * FROM validation_jobs WHERE id = $1`, [id], manager);
  }

  /** A validation job belongs to the owner of its crawl job's project. Read on a replica. */
  async findOwned(
    userId: string,
    id: number,
    manager?: EntityManager,
  ): Promise<ValidationJob | null> {
    return this.replicaRow(
      `SELECT vj.* FROM validation_jobs vj
         JOIN crawl_jobs cj ON cj.id = vj.crawl_job_id
         JOIN projects p ON p.id = cj.project_id
        WHERE vj.id = $1 AND p.user_id = $2 AND p.status <> 'deleted'`,
      [id, userId],
      manager,
    );
  }

  async getOwned(userId: string, id: number, manager?: EntityManager): Promise<ValidationJob> {
    const job = await this.findOwned(userId, id, manager);
    if (!job) throw new NotFoundError('validation job', id);
    return job;
  }

  /** A crawl job's validations, newest first (ix_validation_job_crawl_job_id). Read on a replica. */
  async listByCrawlJob(crawlJobId: number, manager?: EntityManager): Promise<ValidationJob[]> {
    return this.replicaRows(
      `SELECT * FROM validation_jobs WHERE crawl_job_id = $1 ORDER BY id DESC`,
      [crawlJobId],
      manager,
    );
  }

  /**
   * The rules of the crawl job's most recently completed validation, if any. On the primary: it
   * decides what an export contains, so a validation completed a moment ago must count.
   */
  async latestCompleted(
    crawlJobId: number,
    manager?: EntityManager,
  ): Promise<ValidationJob | null> {
    return this.row(
      `SELECT * FROM validation_jobs WHERE crawl_job_id = $1 AND status = 'completed'
        ORDER BY completed_at DESC, id DESC LIMIT 1`,
      [crawlJobId],
      manager,
    );
  }

  /**
   * Progress of a running job (also its heartbeat: it touches updated_at). Returns false when
   * the job is no longer running (cancelled or recovered meanwhile): the worker should stop.
   */
  async recordProgress(
    id: number,
    progress: {
      totalImages: number;
      validatedImages: number;
      invalidImages: number;
      progress: number;
    },
    manager?: EntityManager,
  ): Promise<boolean> {
    const rows = await queryRows(
      this.manager(manager),
      `UPDATE validation_jobs SET total_images = $2, validated_images = $3, invalid_images = $4,
              progress = $5, updated_at = now()
        WHERE id = $1 AND status = 'running' RETURNING id`,
      [
        id,
        progress.totalImages,
        progress.validatedImages,
        progress.invalidImages,
        progress.progress,
      ],
    );
    return rows.length === 1;
  }

  /**
   * Completes a running job with its final counts in one statement (total = validated: every
   * image was looked at). IllegalTransitionError when it no longer runs.
   */
  complete(
    id: number,
    counts: { validatedImages: number; invalidImages: number },
    manager?: EntityManager,
  ): Promise<ValidationJob> {
    return this.lifecycle.transition(this.manager(manager), id, 'complete', {
      extra: {
        total_images: counts.validatedImages,
        validated_images: counts.validatedImages,
        invalid_images: counts.invalidImages,
      },
    });
  }

  claimNext(manager?: EntityManager): Promise<ValidationJob | null> {
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
    options: { errorMessage?: string } = {},
    manager?: EntityManager,
  ): Promise<ValidationJob> {
    return this.lifecycle.transition(this.manager(manager), id, transition, options);
  }

  recoverStale(leaseSeconds: number, manager?: EntityManager): Promise<ValidationJob[]> {
    return this.lifecycle.recoverStale(this.manager(manager), leaseSeconds);
  }
}
