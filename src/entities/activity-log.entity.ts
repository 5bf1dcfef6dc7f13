import {
  IsDefined,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  MaxLength,
  MinLength,
} from 'class-validator';
import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import type { Profile } from './profile.entity';

/**
 * An audit trail row. `user_id` is nullable and SET NULL on delete: deleting a profile keeps
 * the history of what it did.
 */
@Entity({ name: 'activity_logs' })
@Index('ix_activity_log_user_id', ['userId'])
@Index('ix_activity_log_timestamp', ['timestamp'])
export class ActivityLog {
  @PrimaryGeneratedColumn('increment', {
    name: 'id',
    type: 'int',
    primaryKeyConstraintName: 'pk_activity_logs',
  })
  id!: number;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  @IsOptional()
  @IsUUID()
  userId!: string | null;

  @ManyToOne('Profile', (profile: Profile) => profile.activityLogs, {
    nullable: true,
    onDelete: 'SET NULL',
  })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_activity_logs_user_id' })
  user?: Relation<Profile> | null;

  /** What happened, e.g. `project.created`. */
  @Column({ name: 'action', type: 'text' })
  @IsDefined()
  @IsString()
  @MinLength(1)
  action!: string;

  @Column({ name: 'resource_type', type: 'varchar', length: 50, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(50)
  resourceType!: string | null;

  @Column({ name: 'resource_id', type: 'varchar', length: 50, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(50)
  resourceId!: string | null;

  @Column({ name: 'metadata', type: 'jsonb', nullable: true })
  @IsOptional()
  @IsObject()
  metadata!: Record<string, unknown> | null;

  @CreateDateColumn({ name: 'timestamp', type: 'timestamptz' })
  timestamp!: Date;
}
