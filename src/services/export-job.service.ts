import type { DataSource } from 'typeorm';
import { CreateExportJobDto } from '../dto/create-export-job.dto';
import { assertId, assertUserId, parseInput } from '../dto/parse';
import { IdPageDto } from '../dto/pagination.dto';
import type { ExportJob, ExportOptions } from '../entities/export-job.entity';
import type { ValidationRules } from '../entities/validation-job.entity';
import { ConflictError } from '../errors';
import { ActivityLogRepository } from '../repositories/activity-log.repository';
import { CrawlJobRepository } from '../repositories/crawl-job.repository';
import { ExportJobRepository, type ExportResult } from '../repositories/export-job.repository';
import { ImageRepository } from '../repositories/image.repository';
import { ValidationJobRepository } from '../repositories/validation-job.repository';
import type { ExportDestination } from './export/export-destination';
import { ExportWriter } from './export/export-writer';
import { LocalDirectoryDestination } from './export/local-directory-destination';
import { exportFileName } from './export/manifest';
import type { ImageStorage } from '../storage/image-storage';
import { JobRunner, type JobRun } from './jobs/job-runner';
import { inTransaction } from './transaction';

export interface ExportJobServiceOptions {
  /**
   * Where export files are written: a LocalDirectoryDestination or a BlobContainerDestination.
   * Give this or `outputDir`.
   */
  destination?: ExportDestination;
  /** Shorthand for `destination: new LocalDirectoryDestination(outputDir, { downloadBaseUrl })`. */
  outputDir?: string;
  /** With `outputDir`: download_url = `<base>/<file name>`; default a file:// URL of the file. */
  downloadBaseUrl?: string;
  /** Reads image files for zip and tar exports (LocalDirectoryStorage, BlobContainerStorage). */
  storage?: ImageStorage;
  /** Lifetime of an export file unless the request sets expiresInHours. Default 24. */
  defaultExpiresInHours?: number;
  /** Images between progress updates. Default 1000. */
  batchSize?: number;
  /** Least time between two progress updates, in ms. Default 250 (see ExportWriterOptions). */
  progressIntervalMs?: number;
  /**
   * CSV exports neutralise spreadsheet formulas the OWASP way (see `neutraliseCsvFormula`):
   * a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, and every text
   * cell is quoted. Default true; set false only when no person opens the file in a spreadsheet
   * and the consumer needs the raw values.
   */
  csvFormulaProtection?: boolean;
}

export {
  ARCHIVE_MANIFEST,
  archiveEntryName,
  exportFileName,
  MANIFEST_COLUMNS,
  manifestRow,
  type ManifestRow,
} from './export/manifest';

export interface ExportDownload {
  downloadUrl: string;
  /** Where the destination keeps the file: a local path, or the blob's URL (without a SAS). */
  location: string;
  /** @deprecated the same as `location` (a path only with a local destination). */
  filePath: string;
  fileSize: number | null;
  expiresAt: Date | null;
}

export type ExportProgress = Pick<ExportJob, 'id' | 'totalImages' | 'exportedImages' | 'progress'>;
/** Called after each batch (awaited, so a listener may do I/O) and once at completion. */
export type ExportProgressListener = (progress: ExportProgress) => void | Promise<void>;

/** `export-<id>.<format>` and its `.part`: the only names this service writes. */
const EXPORT_FILE = /^export-(\d+)\.(zip|tar|csv|jsonl)(\.part)?$/;

/**
 * Export jobs: request, run (a csv/jsonl manifest, or a zip/tar holding manifest.jsonl plus
 * every image's file), download, purge. The data path is ExportWriter's (COPY out of
 * PostgreSQL, one snapshot, flat memory); this service owns the job: its status, progress,
 * expiry and download record.
 *
 * - A zip/tar export of an image without a readable file FAILS the job with a message naming the
 *   image: a dataset silently missing files is worse than no dataset.
 * - Nothing is visible at the destination before the export completes (a .part file renamed, or
 *   a blob whose blocks are committed at the end), and a failed export leaves nothing there.
 * - `onlyValid` re-applies the rules of the crawl job's latest completed validation job in SQL
 *   (the schema stores no per-image validity); without such a validation the export fails.
 * - Purging: the status set has no 'expired', so an expired export keeps its status; its file is
 *   deleted and download_url and file_size are cleared (expires_at stays, saying when).
 */
export class ExportJobService {
  private readonly crawlJobs: CrawlJobRepository;
  private readonly images: ImageRepository;
  private readonly exportJobs: ExportJobRepository;
  private readonly validationJobs: ValidationJobRepository;
  private readonly activity: ActivityLogRepository;
  private readonly writer: ExportWriter;
  readonly destination: ExportDestination;
  /** Claims, heartbeats, stop detection and failure, shared with validations; the worker runs it. */
  readonly jobs: JobRunner<ExportJob, ExportProgress>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ExportJobServiceOptions,
  ) {
    if (options.destination && options.outputDir !== undefined) {
      throw new TypeError('ExportJobService: give destination or outputDir, not both');
    }
    if (options.destination) {
      this.destination = options.destination;
    } else if (options.outputDir) {
      this.destination = new LocalDirectoryDestination(options.outputDir, {
        downloadBaseUrl: options.downloadBaseUrl,
      });
    } else {
      throw new TypeError(
        'ExportJobService needs a destination (new LocalDirectoryDestination(dir) or ' +
          'new BlobContainerDestination(containerClient)) or an outputDir',
      );
    }
    this.crawlJobs = new CrawlJobRepository(dataSource);
    this.images = new ImageRepository(dataSource);
    this.exportJobs = new ExportJobRepository(dataSource);
    this.validationJobs = new ValidationJobRepository(dataSource);
    this.activity = new ActivityLogRepository(dataSource);
    this.writer = new ExportWriter(this.images, {
      storage: options.storage,
      progressEvery: options.batchSize,
      progressIntervalMs: options.progressIntervalMs,
      csvFormulaProtection: options.csvFormulaProtection,
    });
    this.jobs = new JobRunner('export', this.exportJobs, (job, run) => this.export(job, run), {
      afterRecovery: (jobs) => this.removeFilesOf(jobs),
    });
  }

  /** A pending export of a crawl job the user owns. */
  async request(userId: string, input: unknown): Promise<ExportJob> {
    assertUserId(userId);
    const dto = parseInput(CreateExportJobDto, input);
    const options: ExportOptions = {};
    if (dto.options?.onlyValid !== undefined) options.onlyValid = dto.options.onlyValid;
    if (dto.options?.expiresInHours !== undefined) {
      options.expiresInHours = dto.options.expiresInHours;
    }
    return inTransaction(this.dataSource, async (m) => {
      const crawlJob = await this.crawlJobs.getOwned(userId, dto.crawlJobId, m);
      const job = await this.exportJobs.insert(
        { crawlJobId: crawlJob.id, userId, name: dto.name, format: dto.format, options },
        m,
      );
      await this.exportJobs.notifyPending(m);
      await this.activity.record(
        {
          userId,
          action: 'export.requested',
          resourceType: 'export_job',
          resourceId: job.id,
          metadata: { crawlJobId: crawlJob.id, format: job.format, options },
        },
        m,
      );
      return job;
    });
  }

  async get(userId: string, id: number): Promise<ExportJob> {
    assertUserId(userId);
    assertId('export job', id);
    return this.exportJobs.getOwned(userId, id);
  }

  /** The user's exports, newest first; pass the last id seen as `beforeId` for the next page. */
  async listMine(userId: string, page: unknown = {}): Promise<ExportJob[]> {
    assertUserId(userId);
    const dto = parseInput(IdPageDto, page);
    return this.exportJobs.listByUser(userId, { limit: dto.limit ?? 20, beforeId: dto.beforeId });
  }

  async listForCrawlJob(userId: string, crawlJobId: number): Promise<ExportJob[]> {
    assertUserId(userId);
    assertId('crawl job', crawlJobId);
    await this.crawlJobs.getOwned(userId, crawlJobId);
    return this.exportJobs.listByCrawlJob(crawlJobId);
  }

  cancel(userId: string, id: number): Promise<ExportJob> {
    return this.userTransition(userId, id, 'cancel');
  }

  retry(userId: string, id: number): Promise<ExportJob> {
    return this.userTransition(userId, id, 'retry');
  }

  private async userTransition(userId: string, id: number, transition: 'cancel' | 'retry') {
    assertUserId(userId);
    assertId('export job', id);
    return inTransaction(this.dataSource, async (m) => {
      await this.exportJobs.getOwned(userId, id, m);
      const job = await this.exportJobs.transition(id, transition, {}, m);
      if (job.status === 'pending') await this.exportJobs.notifyPending(m);
      return job;
    });
  }

  /**
   * Where to fetch a completed, unexpired export; records export.downloaded. ConflictError when
   * the export is not completed or its file was purged.
   */
  async download(userId: string, id: number): Promise<ExportDownload> {
    assertUserId(userId);
    assertId('export job', id);
    return inTransaction(this.dataSource, async (m) => {
      const job = await this.exportJobs.getOwned(userId, id, m);
      if (job.status !== 'completed') {
        throw new ConflictError(`export job ${id} is ${job.status}, not completed`, 'status');
      }
      if (!job.downloadUrl || (job.expiresAt && job.expiresAt.getTime() <= Date.now())) {
        throw new ConflictError(
          `export job ${id} expired at ${job.expiresAt?.toISOString()}`,
          'expiresAt',
        );
      }
      await this.activity.record(
        { userId, action: 'export.downloaded', resourceType: 'export_job', resourceId: id },
        m,
      );
      const location = this.filePath(job);
      return {
        downloadUrl: job.downloadUrl,
        location,
        filePath: location,
        fileSize: job.fileSize,
        expiresAt: job.expiresAt,
      };
    });
  }

  /** Where the destination keeps the export's file: a local path, or the blob's URL. */
  filePath(job: Pick<ExportJob, 'id' | 'format'>): string {
    return this.destination.locate(exportFileName(job));
  }

  /** Worker: claims the oldest pending export and runs it; null when none is pending. */
  async runNext(onProgress?: ExportProgressListener): Promise<ExportJob | null> {
    const job = await this.jobs.claimNext();
    return job ? this.jobs.run(job, { onProgress }) : null;
  }

  /** Worker: starts the given pending export and runs it to the end. */
  async run(id: number, onProgress?: ExportProgressListener): Promise<ExportJob> {
    assertId('export job', id);
    return this.jobs.run(await this.jobs.start(id), { onProgress });
  }

  /** Fails running exports whose worker went silent, and removes the files they left. */
  recoverStale(leaseSeconds: number): Promise<ExportJob[]> {
    return this.jobs.recoverStale(leaseSeconds);
  }

  /**
   * Deletes the files of expired exports and clears their download_url; returns their ids.
   * Then removes the orphans a killed worker leaves (see `removeOrphanFiles`).
   */
  async purgeExpired(): Promise<number[]> {
    const purged: number[] = [];
    for (;;) {
      const expired = await this.exportJobs.listExpired(100);
      if (expired.length === 0) break;
      for (const job of expired) {
        await this.destination.remove(exportFileName(job));
        await this.exportJobs.clearDownload(job.id);
        purged.push(job.id);
      }
    }
    await this.removeOrphanFiles();
    return purged;
  }

  /**
   * Export files at the destination that no export will ever serve: a `.part` of a job
   * that is not running (its worker was killed mid-write), and an `export-N.<format>` whose job
   * is not a completed export with a download (killed between rename and completion, or a row
   * deleted since). Files of running jobs and anything not named like an export are left alone.
   * Returns the names removed.
   */
  async removeOrphanFiles(): Promise<string[]> {
    const names = await this.destination.list();
    const files = names.flatMap((name) => {
      const match = EXPORT_FILE.exec(name);
      return match
        ? [{ name, id: Number(match[1]), format: match[2], part: match[3] !== undefined }]
        : [];
    });
    if (files.length === 0) return [];
    const states = await this.exportJobs.fileStates([...new Set(files.map((f) => f.id))]);
    const removed: string[] = [];
    for (const file of files) {
      const state = states.get(file.id);
      const served =
        state?.status === 'completed' && state.hasDownload && state.format === file.format;
      const keep = state?.status === 'running' || (!file.part && served);
      if (keep) continue;
      await this.destination.remove(file.name);
      removed.push(file.name);
    }
    return removed;
  }

  /**
   * The export as the shared skeleton runs it (it heartbeats, stops the export when the job
   * stops running, fails it when this throws): write the file, then complete the job with it.
   */
  private async export(job: ExportJob, run: JobRun<ExportProgress>): Promise<ExportJob> {
    const file = await this.writeExportFile(job, run);
    try {
      return await this.exportJobs.complete(job.id, file);
    } catch (error) {
      // A refused 'complete' (cancelled or recovered just before it): the file must not stay.
      await this.destination.remove(exportFileName(job));
      throw error;
    }
  }

  /** After stale recovery: the files a lost worker left of the exports now failed. */
  private async removeFilesOf(jobs: ExportJob[]): Promise<void> {
    for (const job of jobs) {
      await this.destination.remove(`${exportFileName(job)}.part`);
      await this.destination.remove(exportFileName(job));
    }
  }

  /**
   * The data part: ExportWriter streams the job's images to the destination (nothing visible
   * there until complete, nothing left on any error) and says what it wrote. Progress goes
   * through `run.progress`, which throws JobStoppedError once the job no longer runs, and
   * `run.signal` stops the streams.
   */
  private async writeExportFile(
    job: ExportJob,
    run: JobRun<ExportProgress>,
  ): Promise<ExportResult> {
    let rules: ValidationRules | undefined;
    if (job.exportOptions.onlyValid) {
      const validation = await this.validationJobs.latestCompleted(job.crawlJobId);
      if (!validation) {
        throw new Error(
          `onlyValid needs a completed validation job of crawl job ${job.crawlJobId}; there is none`,
        );
      }
      rules = validation.validationRules;
    }
    const hours = job.exportOptions.expiresInHours ?? this.options.defaultExpiresInHours ?? 24;
    // Whole seconds: a SAS URL's expiry has no milliseconds, and expires_at must match it.
    const expiresAt = new Date(Math.floor((Date.now() + hours * 3_600_000) / 1000) * 1000);
    const written = await this.writer.write(
      { id: job.id, crawlJobId: job.crawlJobId, format: job.format, rules },
      this.destination,
      expiresAt,
      ({ exported, total }) =>
        run.progress({
          id: job.id,
          totalImages: total,
          exportedImages: exported,
          progress: Math.min(99, Math.floor((exported * 100) / Math.max(total, 1))),
        }),
      run.signal,
    );
    return {
      exportedImages: written.exported,
      fileSize: written.fileSize,
      downloadUrl: written.downloadUrl,
      expiresAt,
    };
  }
}
