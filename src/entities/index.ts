import { ActivityLog } from './activity-log.entity';
import { CrawlJob } from './crawl-job.entity';
import { ExportJob } from './export-job.entity';
import { Image } from './image.entity';
import { Profile } from './profile.entity';
import { Project } from './project.entity';
import { ValidationJob } from './validation-job.entity';

export { ActivityLog, CrawlJob, ExportJob, Image, Profile, Project, ValidationJob };
export type { ExportOptions } from './export-job.entity';
export type { ValidationRules } from './validation-job.entity';
export * from './value-sets';
export { TimestampedEntity } from './columns';

/** Every entity of the schema, for a DataSource's or `TypeOrmModule.forFeature`'s `entities`. */
export const entities = [Profile, Project, CrawlJob, Image, ActivityLog, ValidationJob, ExportJob];
