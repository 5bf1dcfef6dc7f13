import { IsOptional, IsString } from 'class-validator';
import { NameField } from './fields';

export class CreateProjectDto {
  @NameField()
  name!: string;

  @IsOptional()
  @IsString({ message: 'description must be a string' })
  description?: string;
}
