import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ExportJobService, JobWorker, ValidationJobService } from '@pixcrawler/data';
import { EXAMPLE_CONFIG, type ExampleConfig } from './example-config';

/**
 * Runs the package's JobWorker beside the HTTP app, on the app's DataSource: validation and
 * export jobs requested through the app start at once (the request's NOTIFY wakes the worker).
 * It starts when the application has bootstrapped and stops in beforeApplicationShutdown, before
 * TypeOrmModule closes the DataSource: running jobs get the grace period, then are failed with a
 * message saying why. main.ts calls `app.close()` on SIGTERM (or use `app.enableShutdownHooks()`).
 *
 * Without `config.worker` nothing runs here: run the worker as its own process instead
 * (`npx pixcrawler-db work`), which scales apart from the app.
 */
@Injectable()
export class JobWorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('JobWorker');
  private worker?: JobWorker;

  constructor(
    private readonly dataSource: DataSource,
    private readonly validations: ValidationJobService,
    private readonly exports: ExportJobService,
    @Inject(EXAMPLE_CONFIG) private readonly config: ExampleConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.worker) return;
    this.worker = new JobWorker(this.dataSource, [this.validations.jobs, this.exports.jobs], {
      ...this.config.worker,
      events: {
        started: (kind, job) => this.logger.log(`started ${kind} job ${job.id}`),
        finished: (kind, job, ms) =>
          this.logger.log(`${kind} job ${job.id} ${job.status} in ${ms} ms`),
        recovered: (kind, jobs) =>
          this.logger.warn(
            `failed ${jobs.length} lost ${kind} job(s): ${jobs.map((j) => j.id).join(', ')}`,
          ),
        error: (error) => this.logger.error(error),
      },
    });
    await this.worker.start();
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    await this.worker?.stop(signal ?? 'application shutdown');
  }
}
