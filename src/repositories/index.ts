export * from './activity-log.repository';
export * from './crawl-job.repository';
export * from './export-job.repository';
export * from './image.repository';
export * from './job-lifecycle';
export * from './profile.repository';
export * from './project.repository';
export * from './validation-job.repository';
