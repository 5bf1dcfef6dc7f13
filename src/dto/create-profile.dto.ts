import { IsEmail, IsIn, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { PROFILE_ROLES, type ProfileRole } from '../entities/value-sets';

/** A profile as the auth provider hands it over (the id is Supabase's auth.users.id). */
export class CreateProfileDto {
  @IsUUID(undefined, { message: 'id must be a UUID' })
  id!: string;

  @IsEmail(undefined, { message: 'email must be an email address' })
  @MaxLength(255, { message: 'email must be at most 255 characters' })
  email!: string;

  @IsOptional()
  @IsString({ message: 'fullName must be a string' })
  @MaxLength(100, { message: 'fullName must be at most 100 characters' })
  fullName?: string;

  @IsOptional()
  @IsIn(PROFILE_ROLES, { message: `role must be one of ${PROFILE_ROLES.join(', ')}` })
  role?: ProfileRole;
}
