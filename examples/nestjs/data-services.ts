import type { Provider } from '@nestjs/common';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import {
  CrawlJobService,
  ExportJobService,
  LocalDirectoryStorage,
  ProfileService,
  ProjectService,
  ValidationJobService,
} from '@pixcrawler/data';
import { EXAMPLE_CONFIG, type ExampleConfig } from './example-config';

/**
 * The package's services are plain classes built from a DataSource; these factory providers
 * build them from the one TypeOrmModule manages, so controllers inject them by class.
 */
export const dataServiceProviders: Provider[] = [
  {
    provide: ProfileService,
    inject: [DataSource],
    useFactory: (dataSource: DataSource) => new ProfileService(dataSource),
  },
  {
    provide: ProjectService,
    inject: [DataSource],
    useFactory: (dataSource: DataSource) => new ProjectService(dataSource),
  },
  {
    provide: CrawlJobService,
    inject: [DataSource],
    useFactory: (dataSource: DataSource) => new CrawlJobService(dataSource),
  },
  {
    provide: ValidationJobService,
    inject: [DataSource],
    useFactory: (dataSource: DataSource) => new ValidationJobService(dataSource),
  },
  {
    provide: ExportJobService,
    inject: [DataSource, EXAMPLE_CONFIG],
    useFactory: (dataSource: DataSource, config: ExampleConfig) =>
      new ExportJobService(dataSource, {
        outputDir: config.exportDir ?? path.join(os.tmpdir(), 'pixcrawler-exports'),
        storage: new LocalDirectoryStorage(config.imageDir ?? 'images'),
      }),
  },
];
