import { IsInt, IsNotEmpty, IsString, MaxLength, Min } from 'class-validator';
import { composeDecorators } from '../entities/compose-decorators';
import { NAME_MAX_LENGTH } from '../entities/columns';

/**
 * Input fields that several DTOs share, each with the same per-field messages
 * (`$property` is the field's name).
 */

/** A `name`: a non-empty string that fits the column. */
export const NameField = (): PropertyDecorator =>
  composeDecorators(
    IsString({ message: '$property must be a string' }),
    IsNotEmpty({ message: '$property must not be empty' }),
    MaxLength(NAME_MAX_LENGTH, {
      message: `$property must be at most ${NAME_MAX_LENGTH} characters`,
    }),
  );

/** The id of a row (serial): a positive integer. */
export const IdField = (): PropertyDecorator =>
  composeDecorators(
    IsInt({ message: '$property must be an integer' }),
    Min(1, { message: '$property must be positive' }),
  );
