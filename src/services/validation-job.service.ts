import type { DataSource } from 'typeorm';
import { CreateValidationJobDto } from '../dto/create-validation-job.dto';
import { assertId, assertUserId, parseInput } from '../dto/parse';
import type { ValidationJob, ValidationRules } from '../entities/validation-job.entity';
import { ActivityLogRepository } from '../repositories/activity-log.repository';
import { CrawlJobRepository } from '../repositories/crawl-job.repository';
import { ImageRepository } from '../repositories/image.repository';
import { ValidationJobRepository } from '../repositories/validation-job.repository';
import { inTransaction, translated } from './transaction';

export interface ValidationJobServiceOptions {
  /** Images checked per statement; each batch also updates the job's progress. Default 5000. */
  batchSize?: number;
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
  private readonly batchSize: number;

  constructor(
    private readonly dataSource: DataSource,
    options: ValidationJobServiceOptions = {},
  ) {
    this.crawlJobs = new CrawlJobRepository(dataSource);
    this.images = new ImageRepository(dataSource);
    this.validationJobs = new ValidationJobRepository(dataSource);
    this.activity = new ActivityLogRepository(dataSource);
    this.batchSize = options.batchSize ?? 5000;
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
      return this.validationJobs.transition(id, transition, {}, m);
    });
  }

  /** Worker: claims the oldest pending validation job and runs it; null when none is pending. */
  async runNext(onProgress?: ProgressListener): Promise<ValidationJob | null> {
    const job = await this.validationJobs.claimNext();
    return job ? this.execute(job, onProgress) : null;
  }

  /** Worker: starts the given pending job and runs it to the end. */
  async run(id: number, onProgress?: ProgressListener): Promise<ValidationJob> {
    assertId('validation job', id);
    const job = await translated(() => this.validationJobs.transition(id, 'start'));
    return this.execute(job, onProgress);
  }

  /** Fails running jobs whose worker stopped reporting for longer than `leaseSeconds`. */
  recoverStale(leaseSeconds: number): Promise<ValidationJob[]> {
    return this.validationJobs.recoverStale(leaseSeconds);
  }

  /**
   * Checks the images in id order, `batchSize` per statement, updating the counts after each
   * batch. Stops quietly when the job stops running (cancelled, recovered) mid-way; fails the
   * job with the error's message when anything throws.
   */
  private async execute(job: ValidationJob, onProgress?: ProgressListener): Promise<ValidationJob> {
    try {
      const rules = job.validationRules;
      const total = await this.images.countByCrawlJob(job.crawlJobId);
      let validated = 0;
      let invalid = 0;
      let afterId = 0;
      for (;;) {
        const batch = await this.images.validityBatch(job.crawlJobId, rules, {
          afterId,
          limit: this.batchSize,
        });
        if (batch.checked === 0 || batch.lastId === null) break;
        validated += batch.checked;
        invalid += batch.invalid;
        afterId = batch.lastId;
        const progress = {
          id: job.id,
          totalImages: Math.max(total, validated),
          validatedImages: validated,
          invalidImages: invalid,
          // 99 at most until the completing transition sets 100.
          progress: Math.min(99, Math.floor((validated * 100) / Math.max(total, validated, 1))),
        };
        if (!(await this.validationJobs.recordProgress(job.id, progress))) {
          return (await this.validationJobs.findById(job.id)) ?? job;
        }
        await onProgress?.(progress);
      }
      const completed = await inTransaction(this.dataSource, async (m) => {
        await this.validationJobs.recordProgress(
          job.id,
          {
            totalImages: validated,
            validatedImages: validated,
            invalidImages: invalid,
            progress: 99,
          },
          m,
        );
        const completed = await this.validationJobs.transition(job.id, 'complete', {}, m);
        await this.crawlJobs.setValidImages(job.crawlJobId, validated - invalid, m);
        return completed;
      });
      await onProgress?.(completed);
      return completed;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return this.validationJobs
        .transition(job.id, 'fail', { errorMessage: `validation failed: ${message}` })
        .catch(() => {
          throw error;
        });
    }
  }
}
