export { ChunkProgressDto } from './chunk-progress.dto';
export { CreateCrawlJobDto } from './create-crawl-job.dto';
export { CreateExportJobDto, ExportOptionsDto } from './create-export-job.dto';
export { CreateProfileDto } from './create-profile.dto';
export { CreateProjectDto } from './create-project.dto';
export { CreateValidationJobDto } from './create-validation-job.dto';
export { KeysetPageDto, PageDto } from './pagination.dto';
export { ValidationRulesDto } from './validation-rules.dto';
export { assertId, assertUserId, parseInput } from './parse';
