import { IsDefined, IsEmail, IsIn, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { Column, Entity, Index, OneToMany, PrimaryColumn, type Relation } from 'typeorm';
import { CheckRule, oneOf } from './checks';
import { DefaultedOnInsert, IsWebUrl, TimestampedEntity } from './columns';
import { PROFILE_ROLES, SAFE_PROFILE_ROLE, type ProfileRole } from './value-sets';
import type { ActivityLog } from './activity-log.entity';
import type { ExportJob } from './export-job.entity';
import type { Project } from './project.entity';

/** A user. The id is Supabase's `auth.users.id`: supplied by the auth provider, never generated. */
@Entity({ name: 'profiles' })
@Index('ix_profiles_email', ['email'], { unique: true })
@CheckRule('ck_profiles_role', oneOf('role', PROFILE_ROLES, SAFE_PROFILE_ROLE))
export class Profile extends TimestampedEntity {
  @PrimaryColumn({ name: 'id', type: 'uuid', primaryKeyConstraintName: 'pk_profiles' })
  @IsUUID()
  id!: string;

  @Column({ name: 'email', type: 'varchar', length: 255 })
  @IsDefined()
  @IsEmail()
  @MaxLength(255)
  email!: string;

  @Column({ name: 'full_name', type: 'varchar', length: 100, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  fullName!: string | null;

  @Column({ name: 'avatar_url', type: 'text', nullable: true })
  @IsOptional()
  @IsWebUrl()
  avatarUrl!: string | null;

  @Column({ name: 'role', type: 'varchar', length: 20, default: 'user' })
  @DefaultedOnInsert()
  @IsIn(PROFILE_ROLES)
  role!: ProfileRole;

  @OneToMany('Project', (project: Project) => project.user)
  projects?: Relation<Project>[];

  @OneToMany('ActivityLog', (log: ActivityLog) => log.user)
  activityLogs?: Relation<ActivityLog>[];

  @OneToMany('ExportJob', (job: ExportJob) => job.user)
  exportJobs?: Relation<ExportJob>[];
}
