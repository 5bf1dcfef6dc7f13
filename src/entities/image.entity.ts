import { IsDefined, IsInt, IsOptional, IsString, MaxLength, Min, MinLength } from 'class-validator';
import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { CheckRule, nonNegative } from './checks';
import { IsStorageUrl, IsWebUrl } from './columns';
import type { CrawlJob } from './crawl-job.entity';

/** One downloaded image. No timestamps: images are written once, in bulk, by the crawler. */
@Entity({ name: 'images' })
@Index('ix_image_crawl_job_id', ['crawlJobId'])
@CheckRule('ck_images_width', nonNegative('width'))
@CheckRule('ck_images_height', nonNegative('height'))
@CheckRule('ck_images_file_size', nonNegative('file_size'))
export class Image {
  @PrimaryGeneratedColumn('increment', {
    name: 'id',
    type: 'int',
    primaryKeyConstraintName: 'pk_images',
  })
  id!: number;

  @Column({ name: 'crawl_job_id', type: 'int' })
  @IsInt()
  crawlJobId!: number;

  @ManyToOne('CrawlJob', (job: CrawlJob) => job.images, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'crawl_job_id', foreignKeyConstraintName: 'fk_images_crawl_job_id' })
  crawlJob?: Relation<CrawlJob>;

  @Column({ name: 'original_url', type: 'text' })
  @IsDefined()
  @IsWebUrl()
  originalUrl!: string;

  @Column({ name: 'filename', type: 'varchar', length: 255 })
  @IsDefined()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  filename!: string;

  @Column({ name: 'storage_url', type: 'text', nullable: true })
  @IsOptional()
  @IsStorageUrl()
  storageUrl!: string | null;

  @Column({ name: 'width', type: 'int', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  width!: number | null;

  @Column({ name: 'height', type: 'int', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  height!: number | null;

  /** Bytes. */
  @Column({ name: 'file_size', type: 'int', nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  fileSize!: number | null;

  /** Lower-case file format as the crawler detected it: jpeg, png, webp, … */
  @Column({ name: 'format', type: 'varchar', length: 10, nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(10)
  format!: string | null;
}
