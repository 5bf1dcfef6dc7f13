export * from './activity.service';
export * from './crawl-job.service';
export * from './export-job.service';
export * from './export/csv-formula';
export * from './profile.service';
export * from './project.service';
export * from './transaction';
export * from './validation-job.service';
