import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { ActivityService } from '../services/activity.service';
import { CrawlJobService } from '../services/crawl-job.service';
import { ExportJobService } from '../services/export-job.service';
import { ProfileService } from '../services/profile.service';
import { ProjectService } from '../services/project.service';
import { ValidationJobService } from '../services/validation-job.service';
import { DomainErrorFilter } from './domain-error.filter';
import { JobWorkerHost } from './job-worker.host';
import {
  PIXCRAWLER_DATA_OPTIONS,
  PIXCRAWLER_DATA_SOURCE,
  type PixCrawlerDataModuleAsyncOptions,
  type PixCrawlerDataModuleOptions,
  type PixCrawlerDataModuleSettings,
  type PixCrawlerDataOptions,
} from './pixcrawler-data.options';

/** A service built from the DataSource alone. */
const onDataSource = (service: new (dataSource: DataSource) => object): Provider => ({
  provide: service,
  inject: [PIXCRAWLER_DATA_SOURCE],
  useFactory: (dataSource: DataSource) => new service(dataSource),
});

/** The package's services: plain classes, built here from the module's DataSource. */
const SERVICES: Provider[] = [
  onDataSource(ProfileService),
  onDataSource(ProjectService),
  onDataSource(CrawlJobService),
  onDataSource(ActivityService),
  {
    provide: ValidationJobService,
    inject: [PIXCRAWLER_DATA_SOURCE, PIXCRAWLER_DATA_OPTIONS],
    useFactory: (dataSource: DataSource, options: PixCrawlerDataOptions) =>
      new ValidationJobService(dataSource, options.validationJobs),
  },
  {
    provide: ExportJobService,
    inject: [PIXCRAWLER_DATA_SOURCE, PIXCRAWLER_DATA_OPTIONS],
    useFactory: (dataSource: DataSource, options: PixCrawlerDataOptions) =>
      new ExportJobService(dataSource, options.exportJobs),
  },
];

/**
 * The package's services as NestJS providers, on the application's TypeORM DataSource (the one
 * TypeOrmModule manages, unless `dataSource` names another token): ProfileService,
 * ProjectService, CrawlJobService, ActivityService, ValidationJobService and ExportJobService,
 * injectable by class. With the options' `worker`, JobWorkerHost runs the job worker beside
 * the application; with `registerFilter`, DomainErrorFilter answers domain errors app-wide.
 *
 * The DataSource's options come from `dataSourceOptions(...)` in TypeOrmModule.forRoot(Async);
 * this module neither opens nor closes it.
 */
@Module({})
export class PixCrawlerDataModule {
  static forRoot(options: PixCrawlerDataModuleOptions): DynamicModule {
    const { dataSource, registerFilter, isGlobal, ...settings } = options;
    return PixCrawlerDataModule.build(
      { dataSource, registerFilter, isGlobal },
      { provide: PIXCRAWLER_DATA_OPTIONS, useValue: settings },
    );
  }

  /** The options from a factory, for options that come from configuration or other providers. */
  static forRootAsync(options: PixCrawlerDataModuleAsyncOptions): DynamicModule {
    return PixCrawlerDataModule.build(
      options,
      {
        provide: PIXCRAWLER_DATA_OPTIONS,
        inject: options.inject ?? [],
        useFactory: options.useFactory,
      },
      options.imports,
    );
  }

  private static build(
    settings: PixCrawlerDataModuleSettings,
    optionsProvider: Provider,
    imports: DynamicModule['imports'] = [],
  ): DynamicModule {
    const filter: Provider[] = settings.registerFilter
      ? [{ provide: APP_FILTER, useClass: DomainErrorFilter }]
      : [];
    return {
      module: PixCrawlerDataModule,
      global: settings.isGlobal ?? false,
      imports,
      providers: [
        optionsProvider,
        { provide: PIXCRAWLER_DATA_SOURCE, useExisting: settings.dataSource ?? DataSource },
        ...SERVICES,
        JobWorkerHost,
        ...filter,
      ],
      exports: [...SERVICES, JobWorkerHost, PIXCRAWLER_DATA_OPTIONS],
    };
  }
}
