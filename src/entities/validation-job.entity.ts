import { IsInt, IsObject } from 'class-validator';
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
  CountColumn,
  DefaultedOnInsert,
  ErrorMessageColumn,
  NameColumn,
  OptionalTimestampColumn,
  ProgressColumn,
  StatusColumn,
  TimestampedEntity,
} from './columns';
import { JOB_STATUSES, SAFE_JOB_STATUS, type JobStatus } from './value-sets';
import type { CrawlJob } from './crawl-job.entity';

/** The rules a validation job applies to each image; every rule is optional. */
export interface ValidationRules {
  minWidth?: number;
  minHeight?: number;
  /** Bytes. */
  maxFileSize?: number;
  /** Lower-case formats, e.g. ['jpeg', 'png']. */
  allowedFormats?: string[];
}

/** Checks a crawl job's images against a set of rules. */
@Entity({ name: 'validation_jobs' })
@Index('ix_validation_job_status', ['status'])
@Index('ix_validation_job_crawl_job_id', ['crawlJobId'])
// Only the pending jobs: a claim reads one entry however many finished jobs the table holds.
@Index('ix_validation_job_pending', ['id'], { where: PENDING_JOB })
@CheckRule('ck_validation_jobs_status', oneOf('status', JOB_STATUSES, SAFE_JOB_STATUS))
@CheckRule('ck_validation_jobs_progress', percentage('progress'))
@CheckRule('ck_validation_jobs_total_images', nonNegative('total_images'))
@CheckRule('ck_validation_jobs_validated_images', nonNegative('validated_images'))
@CheckRule('ck_validation_jobs_invalid_images', nonNegative('invalid_images'))
export class ValidationJob extends TimestampedEntity {
  @PrimaryGeneratedColumn('increment', {
    name: 'id',
    type: 'int',
    primaryKeyConstraintName: 'pk_validation_jobs',
  })
  id!: number;

  @Column({ name: 'crawl_job_id', type: 'int' })
  @IsInt()
  crawlJobId!: number;

  @ManyToOne('CrawlJob', (job: CrawlJob) => job.validationJobs, {
    nullable: false,
    onDelete: 'CASCADE',
  })
  @JoinColumn({ name: 'crawl_job_id', foreignKeyConstraintName: 'fk_validation_jobs_crawl_job_id' })
  crawlJob?: Relation<CrawlJob>;

  @NameColumn()
  name!: string;

  @StatusColumn(JOB_STATUSES, 'pending')
  status!: JobStatus;

  @ProgressColumn()
  progress!: number;

  @CountColumn('total_images')
  totalImages!: number;

  @CountColumn('validated_images')
  validatedImages!: number;

  @CountColumn('invalid_images')
  invalidImages!: number;

  @Column({ name: 'validation_rules', type: 'jsonb', default: {} })
  @DefaultedOnInsert()
  @IsObject()
  validationRules!: ValidationRules;

  @OptionalTimestampColumn('started_at')
  startedAt!: Date | null;

  @OptionalTimestampColumn('completed_at')
  completedAt!: Date | null;

  @ErrorMessageColumn()
  errorMessage!: string | null;
}
