import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';
import { Image } from '../entities/image.entity';
import type { ValidationRules } from '../entities/validation-job.entity';
import { IntField, TextListField } from './fields';

export const MAX_ALLOWED_FORMATS = 50;

/**
 * The rules of a validation job; an image must pass every rule that is set. Each limit is
 * bounded by the column it is compared with (width, height, file_size are int4; format is
 * varchar(10)).
 */
export class ValidationRulesDto implements ValidationRules {
  @IsOptional()
  @IntField({ column: [Image, 'width'], min: 0 })
  minWidth?: number;

  @IsOptional()
  @IntField({ column: [Image, 'height'], min: 0 })
  minHeight?: number;

  /** Bytes. */
  @IsOptional()
  @IntField({ column: [Image, 'fileSize'], min: 0 })
  maxFileSize?: number;

  /** Stored lower-case, as images.format is compared lower-case. */
  @IsOptional()
  @TextListField({ item: { column: [Image, 'format'] }, maxItems: MAX_ALLOWED_FORMATS })
  @Transform(({ value }) =>
    Array.isArray(value)
      ? value.map((format: unknown) => (typeof format === 'string' ? format.toLowerCase() : format))
      : value,
  )
  allowedFormats?: string[];
}
