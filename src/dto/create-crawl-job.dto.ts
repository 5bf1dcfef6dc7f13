import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  MaxLength,
  Min,
} from 'class-validator';

export class CreateCrawlJobDto {
  @IsInt({ message: 'projectId must be an integer' })
  @Min(1, { message: 'projectId must be positive' })
  projectId!: number;

  @IsString({ message: 'name must be a string' })
  @IsNotEmpty({ message: 'name must not be empty' })
  @MaxLength(100, { message: 'name must be at most 100 characters' })
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
