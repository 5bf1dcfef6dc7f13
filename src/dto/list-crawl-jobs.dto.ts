import { IsIn, IsOptional } from 'class-validator';
import { JOB_STATUSES, type JobStatus } from '../entities/value-sets';
import { PageDto } from './pagination.dto';

export class ListCrawlJobsDto extends PageDto {
  @IsOptional()
  @IsIn(JOB_STATUSES, { message: `status must be one of ${JOB_STATUSES.join(', ')}` })
  status?: JobStatus;
}
