import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { dataSourceOptions, entities } from '@pixcrawler/data';
import {
  CrawlJobsController,
  ExportsController,
  ProfilesController,
  ProjectsController,
} from './controllers';
import { dataServiceProviders } from './data-services';
import { DomainErrorFilter } from './domain-error.filter';
import { JobWorkerHost } from './job-worker.host';
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
      ],
      controllers: [ProfilesController, ProjectsController, CrawlJobsController, ExportsController],
      providers: [
        ...dataServiceProviders,
        JobWorkerHost,
        { provide: APP_FILTER, useClass: DomainErrorFilter },
      ],
    };
  }
}
