import { IsOptional } from 'class-validator';
import { IdField, IntField, TextField } from './fields';

export const MAX_PAGE_SIZE = 100;

/** The page size every kind of page takes. */
abstract class LimitDto {
  @IsOptional()
  @IntField({ min: 1, max: MAX_PAGE_SIZE })
  limit?: number;
}

/** Offset pages, for the small per-owner lists (a user's projects, a project's crawl jobs). */
export class PageDto extends LimitDto {
  /** Bounded by int4 like the ids: no list this layer serves is longer than that. */
  @IsOptional()
  @IntField({ type: 'int', min: 0 })
  offset?: number;
}

/**
 * Keyset pages for the large tables (activity_logs): `cursor` is the opaque `nextCursor` of the
 * previous page, so a page costs the same however deep it is.
 */
export class KeysetPageDto extends LimitDto {
  @IsOptional()
  @TextField({ maxLength: 200 })
  cursor?: string;
}

/** Newest-first pages keyed on id: pass the last id of the previous page as `beforeId`. */
export class IdPageDto extends LimitDto {
  @IsOptional()
  @IdField()
  beforeId?: number;
}
