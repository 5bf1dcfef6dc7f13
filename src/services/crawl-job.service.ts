import type { DataSource } from 'typeorm';
import { ChunkProgressDto } from '../dto/chunk-progress.dto';
import { CreateCrawlJobDto } from '../dto/create-crawl-job.dto';
import { ListCrawlJobsDto } from '../dto/list-crawl-jobs.dto';
import { assertImageBatch, NewImageChecker } from '../dto/new-images';
import { assertId, assertUserId, parseInput } from '../dto/parse';
import type { CrawlJob } from '../entities/crawl-job.entity';
import { MAX_ID } from '../entities/columns';
import { IllegalTransitionError, NotFoundError, ValidationError } from '../errors';
import { ActivityLogRepository } from '../repositories/activity-log.repository';
import { CrawlJobRepository } from '../repositories/crawl-job.repository';
import {
  ImageRepository,
  type IngestResult,
  type NewImage,
} from '../repositories/image.repository';
import { ProjectRepository } from '../repositories/project.repository';
import { inTransaction, translated } from './transaction';

const DEFAULT_LIMIT = 20;

/**
 * Crawl jobs. User calls (create, get, list, start, cancel, retry) take the user's id and treat
 * another user's job as missing. Worker calls (ingestImages, recordChunkProgress, complete,
 * fail, recoverStale) come from the crawler, which is trusted and addresses jobs by id.
 */
export class CrawlJobService {
  private readonly projects: ProjectRepository;
  private readonly crawlJobs: CrawlJobRepository;
  private readonly images: ImageRepository;
  private readonly activity: ActivityLogRepository;

  constructor(private readonly dataSource: DataSource) {
    this.projects = new ProjectRepository(dataSource);
    this.crawlJobs = new CrawlJobRepository(dataSource);
    this.images = new ImageRepository(dataSource);
    this.activity = new ActivityLogRepository(dataSource);
  }

  /** Only in an active project: an archived project takes no new work. */
  async create(userId: string, input: unknown): Promise<CrawlJob> {
    assertUserId(userId);
    const dto = parseInput(CreateCrawlJobDto, input);
    return inTransaction(this.dataSource, async (m) => {
      const project = await this.projects.getOwned(userId, dto.projectId, m);
      if (project.status !== 'active') {
        throw new IllegalTransitionError(
          'project',
          project.id,
          project.status,
          'add a crawl job to',
        );
      }
      const job = await this.crawlJobs.insert(
        { projectId: project.id, name: dto.name, keywords: dto.keywords, maxImages: dto.maxImages },
        m,
      );
      await this.activity.record(
        {
          userId,
          action: 'crawl_job.created',
          resourceType: 'crawl_job',
          resourceId: job.id,
          metadata: { projectId: project.id, keywords: job.keywords },
        },
        m,
      );
      return job;
    });
  }

  async get(userId: string, id: number): Promise<CrawlJob> {
    assertUserId(userId);
    assertId('crawl job', id);
    return this.crawlJobs.getOwned(userId, id);
  }

  /** A project's crawl jobs, newest first, optionally of one status. */
  async listForProject(
    userId: string,
    projectId: number,
    query: unknown = {},
  ): Promise<CrawlJob[]> {
    assertUserId(userId);
    assertId('project', projectId);
    const dto = parseInput(ListCrawlJobsDto, query);
    await this.projects.getOwned(userId, projectId);
    return this.crawlJobs.listByProject(projectId, {
      status: dto.status,
      limit: dto.limit ?? DEFAULT_LIMIT,
      offset: dto.offset ?? 0,
    });
  }

  start(userId: string, id: number): Promise<CrawlJob> {
    return this.userTransition(userId, id, 'start');
  }

  cancel(userId: string, id: number): Promise<CrawlJob> {
    return this.userTransition(userId, id, 'cancel');
  }

  retry(userId: string, id: number): Promise<CrawlJob> {
    return this.userTransition(userId, id, 'retry');
  }

  private async userTransition(
    userId: string,
    id: number,
    transition: 'start' | 'cancel' | 'retry',
  ): Promise<CrawlJob> {
    assertUserId(userId);
    assertId('crawl job', id);
    return inTransaction(this.dataSource, async (m) => {
      await this.crawlJobs.getOwned(userId, id, m);
      const job = await this.crawlJobs.transition(id, transition, m);
      if (transition !== 'retry') {
        await this.activity.record(
          {
            userId,
            action: transition === 'start' ? 'crawl_job.started' : 'crawl_job.cancelled',
            resourceType: 'crawl_job',
            resourceId: id,
          },
          m,
        );
      }
      return job;
    });
  }

  /**
   * Stores a batch of crawled images (see ImageRepository.ingest), only into a running job and
   * never past its max_images:
   * - every row is checked first (http(s) original_url, a bare filename, lengths, int4 ranges);
   *   one bad row refuses the whole batch with a ValidationError naming `images[i].field`;
   * - a job that is not running: IllegalTransitionError, nothing stored;
   * - rows past max_images are TRIMMED, not refused: the first rows up to the limit are stored
   *   and `trimmed` says how many were dropped, so a crawler that overshoots keeps its work and
   *   learns to stop. The check and the insert share one transaction with the job row locked,
   *   so concurrent batches cannot overshoot together.
   */
  async ingestImages(id: number, images: unknown): Promise<IngestResult> {
    assertId('crawl job', id);
    assertImageBatch(images);
    let trimmed = 0;
    // One transaction of three round trips (lock and check, COPY, counters with COMMIT): the
    // job is checked on its locked row, and every row as it is encoded for COPY (while the
    // server stores the rows before it); a bad row stores nothing and fails with the
    // ValidationError naming it.
    const result = await translated(() =>
      this.images.ingest(id, images as NewImage[], {
        check: new NewImageChecker(),
        admit: (job) => {
          if (job.status !== 'running') {
            throw new IllegalTransitionError('crawl job', id, job.status, 'ingest images into');
          }
          const room = Math.max(0, job.maxImages - job.totalImages);
          trimmed = Math.max(0, images.length - room);
          return images.length - trimmed;
        },
      }),
    );
    return { ...result, trimmed };
  }

  /** Applies a chunk report atomically; IllegalTransitionError when the job is not running. */
  async recordChunkProgress(id: number, input: unknown): Promise<CrawlJob> {
    assertId('crawl job', id);
    const dto = parseInput(ChunkProgressDto, input);
    return translated(async () => {
      const job = await this.crawlJobs.recordChunkProgress(id, dto).catch((error: unknown) => {
        // Each increment fits int4 (the DTO checks it), but a counter plus it may not.
        if ((error as { driverError?: { code?: string } }).driverError?.code !== '22003') {
          throw error;
        }
        const given = (['startedChunks', 'completedChunks', 'failedChunks'] as const).filter(
          (field) => dto[field],
        );
        throw new ValidationError(
          Object.fromEntries(
            given.map((field) => [
              field,
              [`${field} would take a chunk counter of crawl job ${id} past ${MAX_ID}`],
            ]),
          ),
        );
      });
      if (job) return job;
      const current = await this.crawlJobs.findById(id);
      if (!current) throw new NotFoundError('crawl job', id);
      throw new IllegalTransitionError('crawl job', id, current.status, 'record progress on');
    });
  }

  /** The crawler finished: completed, and a crawl_job.completed row for the owner. */
  async complete(id: number): Promise<CrawlJob> {
    assertId('crawl job', id);
    return inTransaction(this.dataSource, async (m) => {
      const job = await this.crawlJobs.transition(id, 'complete', m);
      await this.activity.record(
        {
          userId: await this.crawlJobs.ownerOf(id, m),
          action: 'crawl_job.completed',
          resourceType: 'crawl_job',
          resourceId: id,
          metadata: { totalImages: job.totalImages },
        },
        m,
      );
      return job;
    });
  }

  async fail(id: number): Promise<CrawlJob> {
    assertId('crawl job', id);
    return this.crawlJobs.transition(id, 'fail');
  }

  /** Running crawl jobs with no update for `leaseSeconds` are failed. */
  recoverStale(leaseSeconds: number): Promise<CrawlJob[]> {
    return this.crawlJobs.recoverStale(leaseSeconds);
  }
}
