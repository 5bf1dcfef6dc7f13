import { IsIn, IsInt, IsObject, IsOptional, IsUUID, Min } from 'class-validator';
import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { CheckRule, nonNegative, oneOf, PENDING_JOB, percentage } from './checks';
import {
  bigintAsNumber,
  CountColumn,
  DefaultedOnInsert,
  ErrorMessageColumn,
  IsStorageUrl,
  NameColumn,
  OptionalTimestampColumn,
  ProgressColumn,
  StatusColumn,
  TimestampedEntity,
} from './columns';
import {
  EXPORT_FORMATS,
  JOB_STATUSES,
  SAFE_EXPORT_FORMAT,
  SAFE_JOB_STATUS,
  type ExportFormat,
  type JobStatus,
} from './value-sets';
import type { CrawlJob } from './crawl-job.entity';
import type { Profile } from './profile.entity';

/** What an export writes besides the format itself; every option is optional. */
export interface ExportOptions {
  /** Only images that passed the crawl job's latest completed validation. */
  onlyValid?: boolean;
  /** Hours until the export file expires and is purged. */
  expiresInHours?: number;
}

/** Packages a crawl job's images as a downloadable dataset. */
@Entity({ name: 'export_jobs' })
@Index('ix_export_job_status', ['status'])
@Index('ix_export_job_user_id', ['userId'])
@Index('ix_export_job_crawl_job_id', ['crawlJobId'])
// Only the pending jobs: a claim reads one entry however many finished jobs the table holds.
@Index('ix_export_job_pending', ['id'], { where: PENDING_JOB })
@CheckRule('ck_export_jobs_status', oneOf('status', JOB_STATUSES, SAFE_JOB_STATUS))
@CheckRule('ck_export_jobs_format', oneOf('format', EXPORT_FORMATS, SAFE_EXPORT_FORMAT))
@CheckRule('ck_export_jobs_progress', percentage('progress'))
@CheckRule('ck_export_jobs_total_images', nonNegative('total_images'))
@CheckRule('ck_export_jobs_exported_images', nonNegative('exported_images'))
@CheckRule('ck_export_jobs_file_size', nonNegative('file_size'))
export class ExportJob extends TimestampedEntity {
  @PrimaryGeneratedColumn('increment', {
    name: 'id',
    type: 'int',
    primaryKeyConstraintName: 'pk_export_jobs',
  })
  id!: number;

  @Column({ name: 'crawl_job_id', type: 'int' })
  @IsInt()
  crawlJobId!: number;

  @ManyToOne('CrawlJob', (job: CrawlJob) => job.exportJobs, {
    nullable: false,
    onDelete: 'CASCADE',
  })
  @JoinColumn({ name: 'crawl_job_id', foreignKeyConstraintName: 'fk_export_jobs_crawl_job_id' })
  crawlJob?: Relation<CrawlJob>;

  @Column({ name: 'user_id', type: 'uuid' })
  @IsUUID()
  userId!: string;

  @ManyToOne('Profile', (profile: Profile) => profile.exportJobs, {
    nullable: false,
    onDelete: 'CASCADE',
  })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_export_jobs_user_id' })
  user?: Relation<Profile>;

  @NameColumn()
  name!: string;

  @StatusColumn(JOB_STATUSES, 'pending')
  status!: JobStatus;

  @ProgressColumn()
  progress!: number;

  @Column({ name: 'format', type: 'varchar', length: 20, default: 'zip' })
  @DefaultedOnInsert()
  @IsIn(EXPORT_FORMATS)
  format!: ExportFormat;

  @CountColumn('total_images')
  totalImages!: number;

  @CountColumn('exported_images')
  exportedImages!: number;

  /** Bytes; bigint in the database because archives pass 2 GiB easily. */
  @Column({ name: 'file_size', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  @IsOptional()
  @IsInt()
  @Min(0)
  fileSize!: number | null;

  @Column({ name: 'download_url', type: 'text', nullable: true })
  @IsOptional()
  @IsStorageUrl()
  downloadUrl!: string | null;

  @Column({ name: 'export_options', type: 'jsonb', default: {} })
  @DefaultedOnInsert()
  @IsObject()
  exportOptions!: ExportOptions;

  @OptionalTimestampColumn('started_at')
  startedAt!: Date | null;

  @OptionalTimestampColumn('completed_at')
  completedAt!: Date | null;

  @OptionalTimestampColumn('expires_at')
  expiresAt!: Date | null;

  @ErrorMessageColumn()
  errorMessage!: string | null;
}
