import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import os from 'node:os';
import path from 'node:path';
import { dataSourceOptions, entities, LocalDirectoryStorage } from '@pixcrawler/data';
import { PixCrawlerDataModule } from '@pixcrawler/data/nestjs';
import {
  CrawlJobsController,
  ExportsController,
  ProfilesController,
  ProjectsController,
} from './controllers';
import { EXAMPLE_CONFIG, ExampleConfigModule, type ExampleConfig } from './example-config';

@Module({})
export class AppModule {
  static register(config: ExampleConfig): DynamicModule {
    const configModule = ExampleConfigModule.register(config);
    return {
      module: AppModule,
      imports: [
        configModule,
        // The package's recommended options (entities, compiled migrations, no synchronize);
        // the app adds its own connection settings.
        TypeOrmModule.forRootAsync({
          imports: [configModule],
          inject: [EXAMPLE_CONFIG],
          useFactory: (settings: ExampleConfig) => dataSourceOptions({ url: settings.databaseUrl }),
        }),
        // Repository<Entity> providers (@InjectRepository(Project)) for the app's own code.
        TypeOrmModule.forFeature(entities),
        // The package's services on TypeOrmModule's DataSource, the job worker beside the app
        // when the config asks for it, and the domain errors as HTTP answers (registerFilter).
        PixCrawlerDataModule.forRootAsync({
          imports: [configModule],
          inject: [EXAMPLE_CONFIG],
          useFactory: (settings: ExampleConfig) => ({
            exportJobs: {
              outputDir: settings.exportDir ?? path.join(os.tmpdir(), 'pixcrawler-exports'),
              storage: new LocalDirectoryStorage(settings.imageDir ?? 'images'),
            },
            worker: settings.worker ?? false,
          }),
          registerFilter: true,
        }),
      ],
      controllers: [ProfilesController, ProjectsController, CrawlJobsController, ExportsController],
    };
  }
}
