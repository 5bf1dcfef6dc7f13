import {
  IsDate,
  IsDefined,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
  ValidationOptions,
} from 'class-validator';
import { Column, CreateDateColumn, UpdateDateColumn, ValueTransformer } from 'typeorm';
import { composeDecorators } from './compose-decorators';

/**
 * `created_at` / `updated_at` for the tables that have them (images and activity_logs do not).
 * `@UpdateDateColumn` makes TypeORM set `updated_at` on every `save()` and every query-builder
 * `update()`; repositories that write raw SQL set it themselves.
 */
export abstract class TimestampedEntity {
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/**
 * PostgreSQL `bigint` arrives from `pg` as a string (it may exceed 2^53). Byte sizes of export
 * archives stay far below 2^53 (8 PiB), so the entities expose them as plain numbers.
 */
export const bigintAsNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

/**
 * For NOT NULL columns that have a database default: leaving the property undefined is fine
 * (the default applies on insert), but an explicit `null` is what the database would refuse.
 */
export function DefaultedOnInsert(options?: ValidationOptions): PropertyDecorator {
  return ValidateIf((_object, value) => value !== undefined, options);
}

/** isURL options for web addresses a crawler fetched from or a person opens: http(s) only. */
export const WEB_URL_OPTIONS = {
  require_protocol: true,
  require_tld: false,
  protocols: ['http', 'https'],
};

/** isURL options for where a stored file lives: web, object store (s3://, gs://) or file://. */
export const STORAGE_URL_OPTIONS = {
  require_protocol: true,
  require_tld: false,
  require_host: false,
  protocols: ['http', 'https', 's3', 'gs', 'file'],
};

/** Web addresses a crawler fetched from or a person opens: http(s) only. */
export function IsWebUrl(options?: ValidationOptions): PropertyDecorator {
  return IsUrl(WEB_URL_OPTIONS, options);
}

/** Where a stored file lives: a web address, an object-store key (s3://, gs://) or a file:// path. */
export function IsStorageUrl(options?: ValidationOptions): PropertyDecorator {
  return IsUrl(STORAGE_URL_OPTIONS, options);
}

/** What PostgreSQL's integer column types accept. */
export const INTEGER_RANGES = {
  int: { min: -2_147_483_648, max: 2_147_483_647 },
  // bigint holds up to 2^63 - 1, but a JavaScript number is exact only to 2^53 - 1.
  bigint: { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER },
} as const;
export type IntegerColumnType = keyof typeof INTEGER_RANGES;

/** The largest serial id: ids are int4. */
export const MAX_ID = INTEGER_RANGES.int.max;

/**
 * Column decorators for the shapes that recur across tables: each is the TypeORM column plus
 * the class-validator rules that mirror what the database enforces, so the two cannot disagree.
 * Check constraints stay on the entity classes, where their names are visible.
 */
/** The length of every `name` column (projects, crawl, validation and export jobs). */
export const NAME_MAX_LENGTH = 100;

/** `name varchar(100) NOT NULL`, never empty. */
export const NameColumn = (): PropertyDecorator =>
  composeDecorators(
    Column({ name: 'name', type: 'varchar', length: NAME_MAX_LENGTH }),
    IsDefined(),
    IsString(),
    MinLength(1),
    MaxLength(NAME_MAX_LENGTH),
  );

/** `status varchar(20) NOT NULL DEFAULT <default>`, one of a value set. */
export const StatusColumn = <T extends string>(values: readonly T[], defaultValue: T) =>
  composeDecorators(
    Column({ name: 'status', type: 'varchar', length: 20, default: defaultValue }),
    DefaultedOnInsert(),
    IsIn(values),
  );

/** `progress int NOT NULL DEFAULT 0`, a percentage. */
export const ProgressColumn = (): PropertyDecorator =>
  composeDecorators(
    Column({ name: 'progress', type: 'int', default: 0 }),
    DefaultedOnInsert(),
    IsInt(),
    Min(0),
    Max(100),
  );

/** A counter: `int NOT NULL DEFAULT <start>`, never negative. */
export const CountColumn = (name: string, start = 0): PropertyDecorator =>
  composeDecorators(
    Column({ name, type: 'int', default: start }),
    DefaultedOnInsert(),
    IsInt(),
    Min(0),
  );

/** A moment that may not have happened yet: `timestamptz NULL`. */
export const OptionalTimestampColumn = (name: string): PropertyDecorator =>
  composeDecorators(Column({ name, type: 'timestamptz', nullable: true }), IsOptional(), IsDate());

/** A job's failure reason: `error_message text NULL`. */
export const ErrorMessageColumn = (): PropertyDecorator =>
  composeDecorators(
    Column({ name: 'error_message', type: 'text', nullable: true }),
    IsOptional(),
    IsString(),
  );
