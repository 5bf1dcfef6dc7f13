import { IsInt, IsOptional, Max, Min } from 'class-validator';

/**
 * What the crawler reports about its chunks since its last report: counts are increments, applied
 * atomically in SQL (`completed_chunks = completed_chunks + $n`), so concurrent reports from
 * several chunk workers never lose an update.
 */
export class ChunkProgressDto {
  /** Chunks that began: adds to total_chunks and active_chunks. */
  @IsOptional()
  @IsInt({ message: 'startedChunks must be an integer' })
  @Min(0, { message: 'startedChunks must not be negative' })
  startedChunks?: number;

  /** Chunks that finished: moves them from active to completed. */
  @IsOptional()
  @IsInt({ message: 'completedChunks must be an integer' })
  @Min(0, { message: 'completedChunks must not be negative' })
  completedChunks?: number;

  /** Chunks that gave up: moves them from active to failed. */
  @IsOptional()
  @IsInt({ message: 'failedChunks must be an integer' })
  @Min(0, { message: 'failedChunks must not be negative' })
  failedChunks?: number;

  /** The crawler's overall estimate, when it has one. */
  @IsOptional()
  @IsInt({ message: 'progress must be an integer' })
  @Min(0, { message: 'progress must be between 0 and 100' })
  @Max(100, { message: 'progress must be between 0 and 100' })
  progress?: number;
}
