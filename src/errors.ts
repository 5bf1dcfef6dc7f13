/**
 * The domain errors repositories and services throw. They carry no HTTP status: mapping them to
 * responses (404, 400, 409) belongs to the API edge.
 */

export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A missing row, or one the caller may not see: both give the same error (same message, same
 * fields), so a caller cannot learn that another user's id exists.
 */
export class NotFoundError extends DomainError {
  readonly code = 'not_found';
  constructor(
    readonly resource: string,
    readonly id: number | string,
  ) {
    super(`${resource} ${id} not found`);
  }
}

/** Invalid input. `fields` maps a property path (`rules.minWidth`) to its messages. */
export class ValidationError extends DomainError {
  readonly code = 'invalid_input';
  constructor(readonly fields: Record<string, string[]>) {
    super(
      `Invalid input: ${Object.entries(fields)
        .map(([field, messages]) => `${field}: ${messages.join('; ')}`)
        .join(' | ')}`,
    );
  }
}

/** A lifecycle change the row's current status does not allow. */
export class IllegalTransitionError extends DomainError {
  readonly code = 'illegal_transition';
  constructor(
    readonly resource: string,
    readonly id: number | string,
    readonly currentStatus: string,
    readonly attempted: string,
  ) {
    super(`cannot ${attempted} ${resource} ${id}: it is ${currentStatus}`);
  }
}

/**
 * The caller is known but may not do this (a non-admin changing a role). Only for operations
 * whose target the caller may see anyway: a row the caller may not see is a NotFoundError.
 */
export class ForbiddenError extends DomainError {
  readonly code = 'forbidden';
  constructor(
    message: string,
    readonly actorId?: string,
  ) {
    super(message);
  }
}

/** The change collides with existing data (a unique value taken, an export not ready). */
export class ConflictError extends DomainError {
  readonly code = 'conflict';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

interface PgErrorFields {
  code?: string;
  constraint?: string;
  table?: string;
  detail?: string;
}

const camelCase = (column: string) =>
  column.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * The column a constraint guards, from the schema's naming rule `<prefix>_<table>_<column>`
 * (`ck_images_width`, `fk_images_crawl_job_id`, `ix_profiles_email`), as a camelCase field.
 */
export function fieldOfConstraint(constraint: string, table?: string): string {
  let rest = constraint.replace(/^(pk|fk|ck|ix|uq)_/, '');
  if (table && rest.startsWith(`${table}_`)) rest = rest.slice(table.length + 1);
  return camelCase(rest);
}

/**
 * PostgreSQL integrity errors as domain errors: 23505 unique → ConflictError, 23503 foreign key
 * and 23514 check → ValidationError on the field the constraint names. Anything else is returned
 * unchanged (it is a bug or an outage, not bad input).
 */
export function translateDatabaseError(error: unknown): unknown {
  if (error instanceof DomainError || typeof error !== 'object' || error === null) return error;
  const pg = ((error as { driverError?: PgErrorFields }).driverError ?? error) as PgErrorFields;
  if (!pg.constraint) return error;
  const field = fieldOfConstraint(pg.constraint, pg.table);
  switch (pg.code) {
    case '23505':
      return new ConflictError(`${field} is already taken (${pg.constraint})`, field);
    case '23503':
      return new ValidationError({
        [field]: [`refers to a row that does not exist (${pg.constraint})`],
      });
    case '23514':
      return new ValidationError({ [field]: [`violates ${pg.constraint}`] });
    default:
      return error;
  }
}
