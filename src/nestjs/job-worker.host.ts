import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ExportJobService } from '../services/export-job.service';
import { JobWorker, type JobWorkerEvents } from '../services/jobs/worker';
import { ValidationJobService } from '../services/validation-job.service';
import {
  PIXCRAWLER_DATA_OPTIONS,
  PIXCRAWLER_DATA_SOURCE,
  type PixCrawlerDataOptions,
} from './pixcrawler-data.options';

/**
 * Runs the package's JobWorker beside the application when the options' `worker` asks for it,
 * on the module's DataSource: validation and export jobs requested through the app start at
 * once (the request's NOTIFY wakes the worker).
 *
 * It starts in onApplicationBootstrap and stops in beforeApplicationShutdown, before
 * TypeOrmModule closes the DataSource (in onApplicationShutdown): running jobs get the grace
 * period, then are failed with a message saying why. Call `app.close()` on SIGTERM, or
 * `app.enableShutdownHooks()`, so that this happens.
 */
@Injectable()
export class JobWorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('JobWorker');
  private running?: JobWorker;

  constructor(
    @Inject(PIXCRAWLER_DATA_SOURCE) private readonly dataSource: DataSource,
    @Inject(PIXCRAWLER_DATA_OPTIONS) private readonly options: PixCrawlerDataOptions,
    private readonly validations: ValidationJobService,
    private readonly exports: ExportJobService,
  ) {}

  /** The worker, from bootstrap on; undefined when the options' `worker` is false or unset. */
  get worker(): JobWorker | undefined {
    return this.running;
  }

  async onApplicationBootstrap(): Promise<void> {
    const { worker } = this.options;
    if (!worker) return;
    this.running = new JobWorker(this.dataSource, [this.validations.jobs, this.exports.jobs], {
      ...worker,
      events: { ...this.loggedEvents(), ...worker.events },
    });
    await this.running.start();
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    await this.running?.stop(signal ?? 'application shutdown');
  }

  private loggedEvents(): JobWorkerEvents {
    const { logger } = this;
    return {
      listenFailed: (ms) =>
        logger.warn(`no notification came back from LISTEN; polling every ${ms} ms instead`),
      listenerLost: (error) => logger.warn(`listening connection lost: ${error.message}`),
      started: (kind, job) => logger.log(`started ${kind} job ${job.id}`),
      finished: (kind, job, ms) => logger.log(`${kind} job ${job.id} ${job.status} in ${ms} ms`),
      recovered: (kind, jobs) =>
        logger.warn(
          `failed ${jobs.length} lost ${kind} job(s): ${jobs.map((j) => j.id).join(', ')}`,
        ),
      abandoned: (kind, job, message) => logger.warn(`${kind} job ${job.id}: ${message}`),
      error: (error) => logger.error(error),
    };
  }
}
