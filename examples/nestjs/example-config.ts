import { Module, type DynamicModule } from '@nestjs/common';
import type { JobWorkerOptions } from '@pixcrawler/data';

export interface ExampleConfig {
  /** postgresql:// URL of a migrated database. */
  databaseUrl: string;
  /** Where export files are written; default a folder under the system's temp directory. */
  exportDir?: string;
  /** Where image files live (exports read them); default the current directory's images/. */
  imageDir?: string;
  /** Run validation and export jobs in this process (the package's JobWorkerHost); unset: none. */
  worker?: Pick<
    JobWorkerOptions,
    'concurrency' | 'leaseSeconds' | 'pollIntervalMs' | 'gracePeriodMs'
  >;
}

export const EXAMPLE_CONFIG = 'EXAMPLE_CONFIG';

/** The app's settings as a provider, so factories (the DataSource's, the services') inject them. */
@Module({})
export class ExampleConfigModule {
  static register(config: ExampleConfig): DynamicModule {
    return {
      module: ExampleConfigModule,
      providers: [{ provide: EXAMPLE_CONFIG, useValue: config }],
      exports: [EXAMPLE_CONFIG],
    };
  }
}
