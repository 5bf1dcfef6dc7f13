import { IsOptional } from 'class-validator';
import { Project } from '../entities/project.entity';
import { NameField, TextField } from './fields';

export class CreateProjectDto {
  @NameField()
  name!: string;

  @IsOptional()
  @TextField({ column: [Project, 'description'], allowEmpty: true })
  description?: string;
}
