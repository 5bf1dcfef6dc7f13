import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Min,
} from 'class-validator';
import { IdField, NameField } from './fields';

export class CreateCrawlJobDto {
  @IdField()
  projectId!: number;

  @NameField()
  name!: string;

  @IsArray({ message: 'keywords must be an array of strings' })
  @ArrayNotEmpty({ message: 'keywords must hold at least one keyword' })
  @ArrayMaxSize(100, { message: 'keywords must hold at most 100 keywords' })
  @IsString({ each: true, message: 'each keywords entry must be a string' })
  @IsNotEmpty({ each: true, message: 'keywords must not contain an empty keyword' })
  keywords!: string[];

  @IsOptional()
  @IsInt({ message: 'maxImages must be an integer' })
  @Min(0, { message: 'maxImages must not be negative' })
  maxImages?: number;
}
