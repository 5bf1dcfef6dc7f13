import { IsOptional } from 'class-validator';
import { CrawlJob } from '../entities/crawl-job.entity';
import { IdField, IntField, NameField, TextListField } from './fields';

/** Longest keyword: keywords live in jsonb (no column length), so this is a sanity bound. */
export const KEYWORD_MAX_LENGTH = 200;
export const MAX_KEYWORDS = 100;

export class CreateCrawlJobDto {
  @IdField()
  projectId!: number;

  @NameField()
  name!: string;

  @TextListField({ item: { maxLength: KEYWORD_MAX_LENGTH }, minItems: 1, maxItems: MAX_KEYWORDS })
  keywords!: string[];

  @IsOptional()
  @IntField({ column: [CrawlJob, 'maxImages'], min: 0 })
  maxImages?: number;
}
