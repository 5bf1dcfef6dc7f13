import { Type } from 'class-transformer';
import { IsDefined, ValidateNested } from 'class-validator';
import { IdField, NameField } from './fields';
import { ValidationRulesDto } from './validation-rules.dto';

export class CreateValidationJobDto {
  @IdField()
  crawlJobId!: number;

  @NameField()
  name!: string;

  @IsDefined({ message: 'rules must be given (an empty object accepts every image)' })
  @ValidateNested()
  @Type(() => ValidationRulesDto)
  rules!: ValidationRulesDto;
}
