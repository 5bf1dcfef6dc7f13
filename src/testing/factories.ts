import { randomUUID } from 'node:crypto';
import type { DeepPartial, EntityManager, ObjectLiteral } from 'typeorm';
import {
  ActivityLog,
  CrawlJob,
  ExportJob,
  Image,
  Profile,
  Project,
  ValidationJob,
} from '../entities';

/**
 * Valid rows for tests, saved through an EntityManager. Every method takes overrides; a parent
 * that is not given is created (a crawl job without `projectId` gets a new project, which gets a
 * new profile), so a test states only what it cares about.
 */
export class TestFactory {
  private sequence = 0;

  constructor(private readonly manager: EntityManager) {}

  private next(): number {
    this.sequence += 1;
    return this.sequence;
  }

  private async save<T extends ObjectLiteral>(
    target: new () => T,
    fields: DeepPartial<NoInfer<T>>,
  ): Promise<T> {
    const entity = this.manager.create(target, fields);
    await this.manager.save(entity);
    return entity;
  }

  profile(overrides: DeepPartial<Profile> = {}): Promise<Profile> {
    const n = this.next();
    return this.save(Profile, {
      id: randomUUID(),
      email: `user${n}-${randomUUID().slice(0, 8)}@example.com`,
      fullName: `Test User ${n}`,
      ...overrides,
    });
  }

  async project(overrides: DeepPartial<Project> = {}): Promise<Project> {
    const userId = overrides.userId ?? (await this.profile()).id;
    return this.save(Project, { name: `Project ${this.next()}`, ...overrides, userId });
  }

  async crawlJob(overrides: DeepPartial<CrawlJob> = {}): Promise<CrawlJob> {
    const projectId = overrides.projectId ?? (await this.project()).id;
    return this.save(CrawlJob, {
      name: `Crawl ${this.next()}`,
      keywords: ['cats', 'dogs'],
      ...overrides,
      projectId,
    });
  }

  /**
   * An image of a crawl job, counted as ingest counts it: the crawl job's total_images and
   * downloaded_images go up by one, so limits (max_images) and progress work out in tests.
   */
  async image(overrides: DeepPartial<Image> = {}): Promise<Image> {
    const crawlJobId = overrides.crawlJobId ?? (await this.crawlJob()).id;
    const n = this.next();
    const image = await this.save(Image, {
      originalUrl: `https://images.example.com/${n}.jpg`,
      filename: `${n}.jpg`,
      width: 640,
      height: 480,
      fileSize: 50_000,
      format: 'jpeg',
      ...overrides,
      crawlJobId,
    });
    await this.manager.increment(CrawlJob, { id: crawlJobId }, 'totalImages', 1);
    await this.manager.increment(CrawlJob, { id: crawlJobId }, 'downloadedImages', 1);
    return image;
  }

  async activityLog(overrides: DeepPartial<ActivityLog> = {}): Promise<ActivityLog> {
    const userId = overrides.userId === undefined ? (await this.profile()).id : overrides.userId;
    return this.save(ActivityLog, { action: 'test.action', ...overrides, userId });
  }

  async validationJob(overrides: DeepPartial<ValidationJob> = {}): Promise<ValidationJob> {
    const crawlJobId = overrides.crawlJobId ?? (await this.crawlJob()).id;
    return this.save(ValidationJob, {
      name: `Validation ${this.next()}`,
      ...overrides,
      crawlJobId,
    });
  }

  /** Without `userId`, the export belongs to the owner of the crawl job's project. */
  async exportJob(overrides: DeepPartial<ExportJob> = {}): Promise<ExportJob> {
    const crawlJob = overrides.crawlJobId
      ? await this.manager.findOneByOrFail(CrawlJob, { id: overrides.crawlJobId })
      : await this.crawlJob();
    const userId =
      overrides.userId ??
      (await this.manager.findOneByOrFail(Project, { id: crawlJob.projectId })).userId;
    return this.save(ExportJob, {
      name: `Export ${this.next()}`,
      ...overrides,
      crawlJobId: crawlJob.id,
      userId,
    });
  }
}
