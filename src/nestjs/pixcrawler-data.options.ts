import type { FactoryProvider, InjectionToken, ModuleMetadata } from '@nestjs/common';
import type { ExportJobServiceOptions } from '../services/export-job.service';
import type { JobWorkerOptions } from '../services/jobs/worker';
import type { ValidationJobServiceOptions } from '../services/validation-job.service';

/** What PixCrawlerDataModule builds the services and the worker with. */
export interface PixCrawlerDataOptions {
  /**
   * ExportJobService's options: where export files are written (`destination`, or `outputDir`)
   * and where the images an archive reads live (`storage`).
   */
  exportJobs: ExportJobServiceOptions;
  /** ValidationJobService's options. */
  validationJobs?: ValidationJobServiceOptions;
  /**
   * Run validation and export jobs in this process: a JobWorker on the same DataSource, started
   * when the application has bootstrapped and stopped before the DataSource closes (see
   * JobWorkerHost). Its `events` default to lines on Nest's Logger (context `JobWorker`); an
   * event you give replaces that one. `false` (the default): no worker here; run it as a
   * process of its own (`npx pixcrawler-db work`).
   */
  worker?: false | JobWorkerOptions;
}

/** Settings that decide which providers the module has: given beside the options, not in them. */
export interface PixCrawlerDataModuleSettings {
  /**
   * The injection token of the DataSource to build on. Default TypeORM's `DataSource` class,
   * the token of TypeOrmModule's default DataSource; for a named one,
   * `getDataSourceToken('name')` from @nestjs/typeorm.
   */
  dataSource?: InjectionToken;
  /** Provide DomainErrorFilter as a global filter (APP_FILTER). Default false. */
  registerFilter?: boolean;
  /** Make the services injectable in every module, without importing this one. Default false. */
  isGlobal?: boolean;
}

export type PixCrawlerDataModuleOptions = PixCrawlerDataOptions & PixCrawlerDataModuleSettings;

export interface PixCrawlerDataModuleAsyncOptions extends PixCrawlerDataModuleSettings {
  /** Modules that export what `inject` names (your configuration module). */
  imports?: ModuleMetadata['imports'];
  /** Providers passed to `useFactory`, in order. */
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => PixCrawlerDataOptions | Promise<PixCrawlerDataOptions>;
}

/** The PixCrawlerDataOptions the module was given (forRoot) or built (forRootAsync). */
export const PIXCRAWLER_DATA_OPTIONS = Symbol('PIXCRAWLER_DATA_OPTIONS');

/** The DataSource the services are built on (an alias of the `dataSource` setting's token). */
export const PIXCRAWLER_DATA_SOURCE = Symbol('PIXCRAWLER_DATA_SOURCE');
