import type { DataSource } from 'typeorm';
import { CreateValidationJobDto } from '../dto/create-validation-job.dto';
import { assertId, assertUserId, parseInput } from '../dto/parse';
import type { ValidationJob, ValidationRules } from '../entities/validation-job.entity';
import { ActivityLogRepository } from '../repositories/activity-log.repository';
import { CrawlJobRepository } from '../repositories/crawl-job.repository';
import { ImageRepository } from '../repositories/image.repository';
import { ValidationJobRepository } from '../repositories/validation-job.repository';
import { JobRunner, type JobRun } from './jobs/job-runner';
import { inTransaction } from './transaction';

export interface ValidationJobServiceOptions {
  /**
   * Images checked per statement; each batch also records the job's progress. By default the
   * size follows the server: the first batch is 5,000 images, and each next one is sized to take
   * about 250 ms (at most 1,000,000), so that a large crawl job validates at close to one
   * statement's speed while its progress still moves several times a second.
   */
  batchSize?: number;
}

/** The adaptive batches: first size, bounds, and the time one batch aims at. */
const ADAPTIVE_BATCH = { first: 5_000, min: 1_000, max: 1_000_000, targetMs: 250 } as const;

/**
 * The next batch's size from the last one's size and duration: the size that would have taken
 * the target time, growing at most 8-fold per step (a first batch served from cache says little
 * about the disk).
 */
export function nextBatchSize(size: number, elapsedMs: number): number {
  const { min, max, targetMs } = ADAPTIVE_BATCH;
  const aimed = Math.round((size * targetMs) / Math.max(elapsedMs, 1));
  return Math.min(max, Math.max(min, Math.min(aimed, size * 8)));
}

export type ValidationProgress = Pick<
  ValidationJob,
  'id' | 'totalImages' | 'validatedImages' | 'invalidImages' | 'progress'
>;
/** Called after each batch (awaited, so a listener may do I/O) and once at completion. */
export type ProgressListener = (progress: ValidationProgress) => void | Promise<void>;

/** Plain copy of the rules with only the keys that are set (the DTO instance has the rest). */
function ruleObject(rules: ValidationRules): ValidationRules {
  const out: ValidationRules = {};
  if (rules.minWidth !== undefined) out.minWidth = rules.minWidth;
  if (rules.minHeight !== undefined) out.minHeight = rules.minHeight;
  if (rules.maxFileSize !== undefined) out.maxFileSize = rules.maxFileSize;
  if (rules.allowedFormats !== undefined) out.allowedFormats = [...rules.allowedFormats];
  return out;
}

/**
 * Validation jobs. `validated_images` counts the images checked so far, `invalid_images` those
 * that failed a rule; at the end the crawl job's `valid_images` becomes their difference.
 *
 * There is no per-image validity column (the schema is fixed), so the outcome lives in the
 * rules: anything that needs "the valid images" (exports with onlyValid) re-applies the rules of
 * the crawl job's latest completed validation job in SQL, with the same predicate
 * (`validityPredicate`) the validation counted with.
 */
export class ValidationJobService {
  private readonly crawlJobs: CrawlJobRepository;
  private readonly images: ImageRepository;
  private readonly validationJobs: ValidationJobRepository;
  private readonly activity: ActivityLogRepository;
  /** A fixed batch size; undefined: sized as the job runs (ADAPTIVE_BATCH). */
  private readonly batchSize: number | undefined;
  /** Claims, heartbeats, stop detection and failure, shared with exports; the worker runs it. */
  readonly jobs: JobRunner<ValidationJob, ValidationProgress>;

  constructor(
    private readonly dataSource: DataSource,
    options: ValidationJobServiceOptions = {},
  ) {
    this.crawlJobs = new CrawlJobRepository(dataSource);
    this.images = new ImageRepository(dataSource);
    this.validationJobs = new ValidationJobRepository(dataSource);
    this.activity = new ActivityLogRepository(dataSource);
    this.batchSize = options.batchSize;
    this.jobs = new JobRunner('validation', this.validationJobs, (job, run) =>
      this.validate(job, run),
    );
  }

  /** A pending validation job for a crawl job the user owns. */
  async request(userId: string, input: unknown): Promise<ValidationJob> {
    assertUserId(userId);
    const dto = parseInput(CreateValidationJobDto, input);
    const rules = ruleObject(dto.rules);
    return inTransaction(this.dataSource, async (m) => {
      const crawlJob = await this.crawlJobs.getOwned(userId, dto.crawlJobId, m);
      const job = await this.validationJobs.insert(
        { crawlJobId: crawlJob.id, name: dto.name, rules },
        m,
      );
      await this.validationJobs.notifyPending(m);
      await this.activity.record(
        {
          userId,
          action: 'validation.requested',
          resourceType: 'validation_job',
          resourceId: job.id,
          metadata: { crawlJobId: crawlJob.id, rules },
        },
        m,
      );
      return job;
    });
  }

  async get(userId: string, id: number): Promise<ValidationJob> {
    assertUserId(userId);
    assertId('validation job', id);
    return this.validationJobs.getOwned(userId, id);
  }

  async listForCrawlJob(userId: string, crawlJobId: number): Promise<ValidationJob[]> {
    assertUserId(userId);
    assertId('crawl job', crawlJobId);
    await this.crawlJobs.getOwned(userId, crawlJobId);
    return this.validationJobs.listByCrawlJob(crawlJobId);
  }

  cancel(userId: string, id: number): Promise<ValidationJob> {
    return this.userTransition(userId, id, 'cancel');
  }

  retry(userId: string, id: number): Promise<ValidationJob> {
    return this.userTransition(userId, id, 'retry');
  }

  private async userTransition(
    userId: string,
    id: number,
    transition: 'cancel' | 'retry',
  ): Promise<ValidationJob> {
    assertUserId(userId);
    assertId('validation job', id);
    return inTransaction(this.dataSource, async (m) => {
      await this.validationJobs.getOwned(userId, id, m);
      const job = await this.validationJobs.transition(id, transition, {}, m);
      if (job.status === 'pending') await this.validationJobs.notifyPending(m);
      return job;
    });
  }

  /** Worker: claims the oldest pending validation job and runs it; null when none is pending. */
  async runNext(onProgress?: ProgressListener): Promise<ValidationJob | null> {
    const job = await this.jobs.claimNext();
    return job ? this.jobs.run(job, { onProgress }) : null;
  }

  /** Worker: starts the given pending job and runs it to the end. */
  async run(id: number, onProgress?: ProgressListener): Promise<ValidationJob> {
    assertId('validation job', id);
    return this.jobs.run(await this.jobs.start(id), { onProgress });
  }

  /** Fails running jobs whose worker showed no sign of life for longer than `leaseSeconds`. */
  recoverStale(leaseSeconds: number): Promise<ValidationJob[]> {
    return this.jobs.recoverStale(leaseSeconds);
  }

  /**
   * The validation itself, run by the shared skeleton (which heartbeats, stops it when the job
   * stops running, fails it when this throws): one pass over the crawl job's images in id order,
   * a batch per statement (`batchSize`, or sized to take about 250 ms each), recording the counts
   * after each batch, then completes the job and sets the crawl job's valid_images in one
   * transaction.
   */
  private async validate(
    job: ValidationJob,
    run: JobRun<ValidationProgress>,
  ): Promise<ValidationJob> {
    const rules = job.validationRules;
    // The total is only for progress: counted on another connection while the first batch
    // runs (an index-only scan of the crawl job, 60 ms of 1,000,000 images on PostgreSQL 15).
    const counting = this.images.countByCrawlJob(job.crawlJobId);
    counting.catch(() => undefined); // awaited below
    let validated = 0;
    let invalid = 0;
    let afterId = 0;
    let limit = this.batchSize ?? ADAPTIVE_BATCH.first;
    for (let last = false; !last;) {
      const started = performance.now();
      const batch = await this.images.validityBatch(job.crawlJobId, rules, { afterId, limit });
      // A short batch was the last: no statement more to find nothing.
      last = batch.checked < limit;
      if (this.batchSize === undefined) limit = nextBatchSize(limit, performance.now() - started);
      if (batch.checked === 0 || batch.lastId === null) break;
      validated += batch.checked;
      invalid += batch.invalid;
      afterId = batch.lastId;
      const total = await counting;
      await run.progress({
        id: job.id,
        totalImages: Math.max(total, validated),
        validatedImages: validated,
        invalidImages: invalid,
        // 99 at most until the completing transition sets 100.
        progress: Math.min(99, Math.floor((validated * 100) / Math.max(total, validated, 1))),
      });
    }
    return inTransaction(this.dataSource, async (m) => {
      const completed = await this.validationJobs.complete(
        job.id,
        { validatedImages: validated, invalidImages: invalid },
        m,
      );
      await this.crawlJobs.setValidImages(job.crawlJobId, validated - invalid, m);
      return completed;
    });
  }
}
