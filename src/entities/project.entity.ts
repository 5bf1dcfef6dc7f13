import { IsOptional, IsString, IsUUID } from 'class-validator';
import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  OneToMany,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { CheckRule, oneOf } from './checks';
import { NameColumn, StatusColumn, TimestampedEntity } from './columns';
import { PROJECT_STATUSES, SAFE_PROJECT_STATUS, type ProjectStatus } from './value-sets';
import type { CrawlJob } from './crawl-job.entity';
import type { Profile } from './profile.entity';

@Entity({ name: 'projects' })
@Index('ix_project_user_id', ['userId'])
@CheckRule('ck_projects_status', oneOf('status', PROJECT_STATUSES, SAFE_PROJECT_STATUS))
export class Project extends TimestampedEntity {
  @PrimaryGeneratedColumn('increment', {
    name: 'id',
    type: 'int',
    primaryKeyConstraintName: 'pk_projects',
  })
  id!: number;

  @NameColumn()
  name!: string;

  @Column({ name: 'description', type: 'text', nullable: true })
  @IsOptional()
  @IsString()
  description!: string | null;

  @Column({ name: 'user_id', type: 'uuid' })
  @IsUUID()
  userId!: string;

  @ManyToOne('Profile', (profile: Profile) => profile.projects, {
    nullable: false,
    onDelete: 'CASCADE',
  })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_projects_user_id' })
  user?: Relation<Profile>;

  @StatusColumn(PROJECT_STATUSES, 'active')
  status!: ProjectStatus;

  @OneToMany('CrawlJob', (job: CrawlJob) => job.project)
  crawlJobs?: Relation<CrawlJob>[];
}
