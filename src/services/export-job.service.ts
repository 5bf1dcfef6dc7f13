import archiver from 'archiver';
import { stringify } from 'csv-stringify';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import type { DataSource } from 'typeorm';
import { CreateExportJobDto } from '../dto/create-export-job.dto';
import { assertId, assertUserId, parseInput } from '../dto/parse';
import { IdPageDto } from '../dto/pagination.dto';
import type { ExportJob, ExportOptions } from '../entities/export-job.entity';
import type { Image } from '../entities/image.entity';
import type { ValidationRules } from '../entities/validation-job.entity';
import { ConflictError } from '../errors';
import { ActivityLogRepository } from '../repositories/activity-log.repository';
import { CrawlJobRepository } from '../repositories/crawl-job.repository';
import { ExportJobRepository, type ExportResult } from '../repositories/export-job.repository';
import { ImageRepository } from '../repositories/image.repository';
import { ValidationJobRepository } from '../repositories/validation-job.repository';
import { neutraliseCsvFormula } from './export/csv-formula';
import type { ImageStorage } from '../storage/image-storage';
import { JobRunner, type JobRun } from './jobs/job-runner';
import { inTransaction } from './transaction';

export interface ExportJobServiceOptions {
  /** Where export files are written (created when missing). */
  outputDir: string;
  /** Reads image files for zip and tar exports. */
  storage: ImageStorage;
  /** download_url = `<base>/<file name>`; default a file:// URL of the file. */
  downloadBaseUrl?: string;
  /** Lifetime of an export file unless the request sets expiresInHours. Default 24. */
  defaultExpiresInHours?: number;
  /** Images per cursor read and per progress update. Default 1000. */
  batchSize?: number;
  /**
   * CSV exports neutralise spreadsheet formulas the OWASP way (see `neutraliseCsvFormula`):
   * a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, and every text
   * cell is quoted. Default true; set false only when no person opens the file in a spreadsheet
   * and the consumer needs the raw values.
   */
  csvFormulaProtection?: boolean;
}

/** The manifest's columns: the images table's columns, in its order. */
export const MANIFEST_COLUMNS = [
  'id',
  'crawl_job_id',
  'original_url',
  'filename',
  'storage_url',
  'width',
  'height',
  'file_size',
  'format',
] as const;
export type ManifestRow = Record<(typeof MANIFEST_COLUMNS)[number], string | number | null>;

export function manifestRow(image: Image): ManifestRow {
  return {
    id: image.id,
    crawl_job_id: image.crawlJobId,
    original_url: image.originalUrl,
    filename: image.filename,
    storage_url: image.storageUrl,
    width: image.width,
    height: image.height,
    file_size: image.fileSize,
    format: image.format,
  };
}

/** Name of the manifest inside zip and tar exports. */
export const ARCHIVE_MANIFEST = 'manifest.jsonl';

/** Where an image's file goes inside a zip or tar export. */
export function archiveEntryName(image: Pick<Image, 'id' | 'filename'>): string {
  return `images/${image.id}-${image.filename.replace(/[/\\]/g, '_')}`;
}

export function exportFileName(job: Pick<ExportJob, 'id' | 'format'>): string {
  return `export-${job.id}.${job.format}`;
}

export interface ExportDownload {
  downloadUrl: string;
  filePath: string;
  fileSize: number | null;
  expiresAt: Date | null;
}

export type ExportProgress = Pick<ExportJob, 'id' | 'totalImages' | 'exportedImages' | 'progress'>;
/** Called after each batch (awaited, so a listener may do I/O) and once at completion. */
export type ExportProgressListener = (progress: ExportProgress) => void | Promise<void>;

/** `export-<id>.<format>` and its `.part`: the only names this service writes. */
const EXPORT_FILE = /^export-(\d+)\.(zip|tar|csv|jsonl)(\.part)?$/;

/** Deletes a file if it is there. */
async function removeFile(file: string): Promise<void> {
  await unlink(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/**
 * Export jobs: request, run (stream the images into a csv/jsonl manifest, or a zip/tar holding
 * manifest.jsonl plus every image's file), download, purge.
 *
 * - Memory stays constant: images come from a server-side cursor a batch at a time, and every
 *   writer pulls (Readable.from over an async generator, archive entries appended one at a time
 *   after the previous one was written), so a slow disk slows the cursor instead of buffering.
 * - A zip/tar export of an image without a readable file FAILS the job with a message naming the
 *   image and the path: a dataset silently missing files is worse than no dataset.
 * - Files are written as `<name>.part` and renamed when complete, so a download never sees half
 *   a file.
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
  /** Claims, heartbeats, stop detection and failure, shared with validations; the worker runs it. */
  readonly jobs: JobRunner<ExportJob, ExportProgress>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ExportJobServiceOptions,
  ) {
    this.crawlJobs = new CrawlJobRepository(dataSource);
    this.images = new ImageRepository(dataSource);
    this.exportJobs = new ExportJobRepository(dataSource);
    this.validationJobs = new ValidationJobRepository(dataSource);
    this.activity = new ActivityLogRepository(dataSource);
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
      return {
        downloadUrl: job.downloadUrl,
        filePath: this.filePath(job),
        fileSize: job.fileSize,
        expiresAt: job.expiresAt,
      };
    });
  }

  /** The export file's path in the output directory. */
  filePath(job: Pick<ExportJob, 'id' | 'format'>): string {
    return path.join(path.resolve(this.options.outputDir), exportFileName(job));
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
        await removeFile(this.filePath(job));
        await this.exportJobs.clearDownload(job.id);
        purged.push(job.id);
      }
    }
    await this.removeOrphanFiles();
    return purged;
  }

  /**
   * Export files in the output directory that no export will ever serve: a `.part` of a job
   * that is not running (its worker was killed mid-write), and an `export-N.<format>` whose job
   * is not a completed export with a download (killed between rename and completion, or a row
   * deleted since). Files of running jobs and anything not named like an export are left alone.
   * Returns the names removed.
   */
  async removeOrphanFiles(): Promise<string[]> {
    const dir = path.resolve(this.options.outputDir);
    const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
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
      await removeFile(path.join(dir, file.name));
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
      await removeFile(this.filePath(job));
      throw error;
    }
  }

  /** After stale recovery: the files a lost worker left of the exports now failed. */
  private async removeFilesOf(jobs: ExportJob[]): Promise<void> {
    for (const job of jobs) {
      await removeFile(`${this.filePath(job)}.part`);
      await removeFile(this.filePath(job));
    }
  }

  /**
   * The data part: streams the job's images into the export file (as `<name>.part`, renamed
   * when complete) and says what it wrote. Progress goes through `run.progress`, which throws
   * JobStoppedError once the job no longer runs; the part file is removed on any error.
   */
  private async writeExportFile(
    job: ExportJob,
    run: JobRun<ExportProgress>,
  ): Promise<ExportResult> {
    const finalPath = this.filePath(job);
    const partPath = `${finalPath}.part`;
    try {
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
      const total = await this.images.countByCrawlJob(job.crawlJobId, rules);
      await mkdir(path.dirname(finalPath), { recursive: true });

      let exported = 0;
      const advance = async (count: number) => {
        exported += count;
        await run.progress({
          id: job.id,
          totalImages: Math.max(total, exported),
          exportedImages: exported,
          progress: Math.min(99, Math.floor((exported * 100) / Math.max(total, exported, 1))),
        });
      };
      const images = (track: boolean) =>
        this.imagesOf(job.crawlJobId, rules, track ? advance : undefined);

      switch (job.format) {
        case 'csv':
          await pipeline(
            Readable.from(mapAsync(images(true), (image) => this.csvRow(image))),
            stringify({
              header: true,
              columns: [...MANIFEST_COLUMNS],
              quoted_string: this.options.csvFormulaProtection !== false,
            }),
            createWriteStream(partPath),
          );
          break;
        case 'jsonl':
          await pipeline(Readable.from(jsonLines(images(true))), createWriteStream(partPath));
          break;
        case 'zip':
        case 'tar':
          await this.writeArchive(job.format, partPath, images);
          break;
      }
      await rename(partPath, finalPath);
      const { size } = await stat(finalPath);
      const hours = job.exportOptions.expiresInHours ?? this.options.defaultExpiresInHours ?? 24;
      return {
        exportedImages: exported,
        fileSize: size,
        downloadUrl: this.downloadUrl(finalPath),
        expiresAt: new Date(Date.now() + hours * 3_600_000),
      };
    } catch (error) {
      // Whatever went wrong (a missing image, a stop under us), no file of an export that did
      // not complete stays behind: neither the .part nor a renamed file.
      await removeFile(partPath);
      await removeFile(finalPath);
      throw error;
    }
  }

  /** A manifest row for the csv writer: text cells neutralised unless switched off. */
  private csvRow(image: Image): ManifestRow {
    const row = manifestRow(image);
    if (this.options.csvFormulaProtection === false) return row;
    for (const column of MANIFEST_COLUMNS) {
      const value = row[column];
      if (typeof value === 'string') row[column] = neutraliseCsvFormula(value);
    }
    return row;
  }

  private downloadUrl(filePath: string): string {
    const base = this.options.downloadBaseUrl;
    if (!base) return pathToFileURL(filePath).href;
    return new URL(path.basename(filePath), base.endsWith('/') ? base : `${base}/`).href;
  }

  /** The job's images one by one; after each cursor batch, `advance` records progress. */
  private async *imagesOf(
    crawlJobId: number,
    rules: ValidationRules | undefined,
    advance?: (count: number) => Promise<void>,
  ): AsyncGenerator<Image> {
    for await (const batch of this.images.stream(crawlJobId, {
      rules,
      batchSize: this.options.batchSize ?? 1000,
    })) {
      yield* batch;
      await advance?.(batch.length);
    }
  }

  /**
   * manifest.jsonl first (one cursor pass), then each image file (a second pass), each entry
   * appended only after archiver has written the previous one.
   */
  private async writeArchive(
    kind: 'zip' | 'tar',
    partPath: string,
    images: (track: boolean) => AsyncGenerator<Image>,
  ): Promise<void> {
    const archive = archiver(kind, kind === 'zip' ? { zlib: { level: 6 } } : {});
    const output = createWriteStream(partPath);
    const written = pipeline(archive, output);
    written.catch(() => undefined); // awaited below; this only avoids an unhandled rejection
    const add = (source: Readable, name: string, store: boolean) =>
      new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => {
          archive.off('entry', onEntry);
          reject(error);
        };
        const onEntry = () => {
          archive.off('error', onError);
          source.off('error', onError);
          resolve();
        };
        archive.once('entry', onEntry);
        archive.once('error', onError);
        source.once('error', onError);
        archive.append(source, kind === 'zip' ? { name, store } : { name });
      });
    try {
      await add(Readable.from(jsonLines(images(false))), ARCHIVE_MANIFEST, false);
      for await (const image of images(true)) {
        // Images are compressed already: stored as they are in a zip.
        await add(await this.options.storage.open(image), archiveEntryName(image), true);
      }
      await archive.finalize();
      await written;
    } catch (error) {
      try {
        archive.abort();
      } catch {
        // archiver's tar module unpipes its tar-stream engine, which has no unpipe(): abort()
        // throws a TypeError there. The error to report is the one that got us here.
      }
      archive.destroy();
      output.destroy();
      await written.catch(() => undefined);
      throw error;
    }
  }
}

async function* mapAsync<T, U>(source: AsyncIterable<T>, map: (item: T) => U): AsyncGenerator<U> {
  for await (const item of source) yield map(item);
}

async function* jsonLines(images: AsyncIterable<Image>): AsyncGenerator<string> {
  for await (const image of images) yield `${JSON.stringify(manifestRow(image))}\n`;
}
