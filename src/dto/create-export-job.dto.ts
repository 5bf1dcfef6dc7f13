import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, ValidateNested } from 'class-validator';
import { IdField, IntField, NameField } from './fields';
import type { ExportOptions } from '../entities/export-job.entity';
import { EXPORT_FORMATS, type ExportFormat } from '../entities/value-sets';

export const MAX_EXPORT_LIFETIME_HOURS = 24 * 30;

export class ExportOptionsDto implements ExportOptions {
  @IsOptional()
  @IsBoolean({ message: 'onlyValid must be true or false' })
  onlyValid?: boolean;

  @IsOptional()
  @IntField({ min: 1, max: MAX_EXPORT_LIFETIME_HOURS })
  expiresInHours?: number;
}

export class CreateExportJobDto {
  @IdField()
  crawlJobId!: number;

  @NameField()
  name!: string;

  @IsIn(EXPORT_FORMATS, { message: `format must be one of ${EXPORT_FORMATS.join(', ')}` })
  format!: ExportFormat;

  @IsOptional()
  @ValidateNested()
  @Type(() => ExportOptionsDto)
  options?: ExportOptionsDto;
}
