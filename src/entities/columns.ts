import { ValidateIf, ValidationOptions, IsUrl } from 'class-validator';
import { CreateDateColumn, UpdateDateColumn, ValueTransformer } from 'typeorm';

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

/** Web addresses a crawler fetched from or a person opens: http(s) only. */
export function IsWebUrl(options?: ValidationOptions): PropertyDecorator {
  return IsUrl(
    { require_protocol: true, require_tld: false, protocols: ['http', 'https'] },
    options,
  );
}

/** Where a stored file lives: a web address, an object-store key (s3://, gs://) or a file:// path. */
export function IsStorageUrl(options?: ValidationOptions): PropertyDecorator {
  return IsUrl(
    {
      require_protocol: true,
      require_tld: false,
      require_host: false,
      protocols: ['http', 'https', 's3', 'gs', 'file'],
    },
    options,
  );
}
