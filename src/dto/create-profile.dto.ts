import { Transform } from 'class-transformer';
import { IsEmail, IsOptional, IsUUID } from 'class-validator';
import { Profile } from '../entities/profile.entity';
import { TextField } from './fields';

/**
 * A profile as the auth provider hands it over at sign-up (the id is Supabase's
 * auth.users.id). There is no `role`: every new profile is a 'user', and only an admin changes a
 * role, through `ProfileService.setRole`. A `role` in the input is refused as an unknown field.
 *
 * Emails are stored lower-case: the auth provider lower-cases them, and the unique index on
 * profiles.email must treat `Ann@x.io` and `ann@x.io` as the same address.
 */
export class CreateProfileDto {
  @IsUUID(undefined, { message: 'id must be a UUID' })
  id!: string;

  @Transform(({ value }) => (typeof value === 'string' ? value.trim().toLowerCase() : value))
  @TextField({ column: [Profile, 'email'] })
  @IsEmail(undefined, { message: 'email must be an email address' })
  email!: string;

  @IsOptional()
  @TextField({ column: [Profile, 'fullName'], allowEmpty: true })
  fullName?: string;
}
