import { ArrayNotEmpty, IsArray, IsInt, IsString } from 'class-validator';
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
import { CheckRule, nonNegative, oneOf, percentage } from './checks';
import {
  CountColumn,
  DefaultedOnInsert,
  NameColumn,
  OptionalTimestampColumn,
  ProgressColumn,
  StatusColumn,
  TimestampedEntity,
} from './columns';
import { JOB_STATUSES, SAFE_CRAWL_JOB_STATUS, type JobStatus } from './value-sets';
import type { ExportJob } from './export-job.entity';
import type { Image } from './image.entity';
import type { Project } from './project.entity';
import type { ValidationJob } from './validation-job.entity';

/** A crawl of the web for one set of keywords; the crawler works through it in chunks. */
@Entity({ name: 'crawl_jobs' })
@Index('ix_crawl_job_status', ['status'])
// Also serves "a project's jobs" alone (leading column), so there is no project_id index.
@Index('ix_crawl_job_project_status', ['projectId', 'status'])
@CheckRule('ck_crawl_jobs_status', oneOf('status', JOB_STATUSES, SAFE_CRAWL_JOB_STATUS))
@CheckRule('ck_crawl_jobs_progress', percentage('progress'))
@CheckRule('ck_crawl_jobs_max_images', nonNegative('max_images'))
@CheckRule('ck_crawl_jobs_total_images', nonNegative('total_images'))
@CheckRule('ck_crawl_jobs_downloaded_images', nonNegative('downloaded_images'))
@CheckRule('ck_crawl_jobs_valid_images', nonNegative('valid_images'))
@CheckRule('ck_crawl_jobs_total_chunks', nonNegative('total_chunks'))
@CheckRule('ck_crawl_jobs_active_chunks', nonNegative('active_chunks'))
@CheckRule('ck_crawl_jobs_completed_chunks', nonNegative('completed_chunks'))
@CheckRule('ck_crawl_jobs_failed_chunks', nonNegative('failed_chunks'))
export class CrawlJob extends TimestampedEntity {
  @PrimaryGeneratedColumn('increment', {
    name: 'id',
    type: 'int',
    primaryKeyConstraintName: 'pk_crawl_jobs',
  })
  id!: number;

  @Column({ name: 'project_id', type: 'int' })
  @IsInt()
  projectId!: number;

  @ManyToOne('Project', (project: Project) => project.crawlJobs, {
    nullable: false,
    onDelete: 'CASCADE',
  })
  @JoinColumn({ name: 'project_id', foreignKeyConstraintName: 'fk_crawl_jobs_project_id' })
  project?: Relation<Project>;

  @NameColumn()
  name!: string;

  @Column({ name: 'keywords', type: 'jsonb' })
  @IsArray()
  @ArrayNotEmpty()
  @IsString({ each: true })
  keywords!: string[];

  @CountColumn('max_images', 1000)
  maxImages!: number;

  @StatusColumn(JOB_STATUSES, 'pending')
  status!: JobStatus;

  @ProgressColumn()
  progress!: number;

  @CountColumn('total_images')
  totalImages!: number;

  @CountColumn('downloaded_images')
  downloadedImages!: number;

  @CountColumn('valid_images')
  validImages!: number;

  @OptionalTimestampColumn('started_at')
  startedAt!: Date | null;

  @OptionalTimestampColumn('completed_at')
  completedAt!: Date | null;

  @CountColumn('total_chunks')
  totalChunks!: number;

  @CountColumn('active_chunks')
  activeChunks!: number;

  @CountColumn('completed_chunks')
  completedChunks!: number;

  @CountColumn('failed_chunks')
  failedChunks!: number;

  /** Ids of the crawler's (Celery) tasks working on this job's chunks. */
  @Column({ name: 'task_ids', type: 'jsonb', default: [] })
  @DefaultedOnInsert()
  @IsArray()
  @IsString({ each: true })
  taskIds!: string[];

  @OneToMany('Image', (image: Image) => image.crawlJob)
  images?: Relation<Image>[];

  @OneToMany('ValidationJob', (job: ValidationJob) => job.crawlJob)
  validationJobs?: Relation<ValidationJob>[];

  @OneToMany('ExportJob', (job: ExportJob) => job.crawlJob)
  exportJobs?: Relation<ExportJob>[];
}
