import { Type } from 'class-transformer';
import {
  IsDefined,
  IsInt,
  IsNotEmpty,
  IsString,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { ValidationRulesDto } from './validation-rules.dto';

export class CreateValidationJobDto {
  @IsInt({ message: 'crawlJobId must be an integer' })
  @Min(1, { message: 'crawlJobId must be positive' })
  crawlJobId!: number;

  @IsString({ message: 'name must be a string' })
  @IsNotEmpty({ message: 'name must not be empty' })
  @MaxLength(100, { message: 'name must be at most 100 characters' })
  name!: string;

  @IsDefined({ message: 'rules must be given (an empty object accepts every image)' })
  @ValidateNested()
  @Type(() => ValidationRulesDto)
  rules!: ValidationRulesDto;
}
