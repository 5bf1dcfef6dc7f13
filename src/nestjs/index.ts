/**
 * `@pixcrawler/data/nestjs`: the package's services as NestJS providers, the job worker beside
 * the application and the domain errors as HTTP answers. Needs @nestjs/common and @nestjs/core
 * (11); the main entry `@pixcrawler/data` loads neither.
 */
export { PixCrawlerDataModule } from './pixcrawler-data.module';
export { DomainErrorFilter } from './domain-error.filter';
export { JobWorkerHost } from './job-worker.host';
export {
  PIXCRAWLER_DATA_OPTIONS,
  type PixCrawlerDataModuleAsyncOptions,
  type PixCrawlerDataModuleOptions,
  type PixCrawlerDataModuleSettings,
  type PixCrawlerDataOptions,
} from './pixcrawler-data.options';
