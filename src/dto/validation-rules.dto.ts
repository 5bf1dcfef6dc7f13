import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  MaxLength,
  Min,
} from 'class-validator';
import type { ValidationRules } from '../entities/validation-job.entity';

/** The rules of a validation job; an image must pass every rule that is set. */
export class ValidationRulesDto implements ValidationRules {
  @IsOptional()
  @IsInt({ message: 'minWidth must be an integer' })
  @Min(0, { message: 'minWidth must not be negative' })
  minWidth?: number;

  @IsOptional()
  @IsInt({ message: 'minHeight must be an integer' })
  @Min(0, { message: 'minHeight must not be negative' })
  minHeight?: number;

  @IsOptional()
  @IsInt({ message: 'maxFileSize must be an integer (bytes)' })
  @Min(0, { message: 'maxFileSize must not be negative' })
  maxFileSize?: number;

  /** Stored lower-case, as images.format is compared lower-case. */
  @IsOptional()
  @IsArray({ message: 'allowedFormats must be an array of strings' })
  @ArrayMaxSize(50, { message: 'allowedFormats must hold at most 50 formats' })
  @IsString({ each: true, message: 'each allowedFormats entry must be a string' })
  @IsNotEmpty({ each: true, message: 'allowedFormats must not contain an empty format' })
  @MaxLength(10, { each: true, message: 'each allowedFormats entry must be at most 10 characters' })
  @Transform(({ value }) =>
    Array.isArray(value)
      ? value.map((format: unknown) => (typeof format === 'string' ? format.toLowerCase() : format))
      : value,
  )
  allowedFormats?: string[];
}
