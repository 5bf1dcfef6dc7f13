import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { IdField } from './fields';

export const MAX_PAGE_SIZE = 100;

/** The page size every kind of page takes. */
abstract class LimitDto {
  @IsOptional()
  @IsInt({ message: 'limit must be an integer' })
  @Min(1, { message: 'limit must be at least 1' })
  @Max(MAX_PAGE_SIZE, { message: `limit must be at most ${MAX_PAGE_SIZE}` })
  limit?: number;
}

/** Offset pages, for the small per-owner lists (a user's projects, a project's crawl jobs). */
export class PageDto extends LimitDto {
  @IsOptional()
  @IsInt({ message: 'offset must be an integer' })
  @Min(0, { message: 'offset must not be negative' })
  offset?: number;
}

/**
 * Keyset pages for the large tables (activity_logs): `cursor` is the opaque `nextCursor` of the
 * previous page, so a page costs the same however deep it is.
 */
export class KeysetPageDto extends LimitDto {
  @IsOptional()
  @IsString({ message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;
}

/** Newest-first pages keyed on id: pass the last id of the previous page as `beforeId`. */
export class IdPageDto extends LimitDto {
  @IsOptional()
  @IdField()
  beforeId?: number;
}
