import { IsOptional } from 'class-validator';
import { CrawlJob } from '../entities/crawl-job.entity';
import { IntField } from './fields';

/**
 * What the crawler reports about its chunks since its last report: counts are increments, applied
 * atomically in SQL (`completed_chunks = completed_chunks + $n`), so concurrent reports from
 * several chunk workers never lose an update. Each increment fits the int4 counter it adds to;
 * a sum that would pass it is refused by the service (ValidationError), not by the driver.
 */
export class ChunkProgressDto {
  /** Chunks that began: adds to total_chunks and active_chunks. */
  @IsOptional()
  @IntField({ column: [CrawlJob, 'totalChunks'], min: 0 })
  startedChunks?: number;

  /** Chunks that finished: moves them from active to completed. */
  @IsOptional()
  @IntField({ column: [CrawlJob, 'completedChunks'], min: 0 })
  completedChunks?: number;

  /** Chunks that gave up: moves them from active to failed. */
  @IsOptional()
  @IntField({ column: [CrawlJob, 'failedChunks'], min: 0 })
  failedChunks?: number;

  /** The crawler's overall estimate, when it has one. */
  @IsOptional()
  @IntField({ min: 0, max: 100 })
  progress?: number;
}
