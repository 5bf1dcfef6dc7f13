import 'reflect-metadata';
import { plainToInstance, type ClassConstructor } from 'class-transformer';
import {
  isUUID,
  validateSync,
  type ValidationError as ClassValidationError,
} from 'class-validator';
import { NotFoundError, ValidationError } from '../errors';
import { MAX_ID } from './fields';
import { plainInput } from './input-shape';

function collect(
  errors: ClassValidationError[],
  prefix: string,
  into: Record<string, string[]>,
): Record<string, string[]> {
  for (const error of errors) {
    const path = prefix ? `${prefix}.${error.property}` : error.property;
    if (error.constraints) into[path] = Object.values(error.constraints);
    if (error.children?.length) collect(error.children, path, into);
  }
  return into;
}

/**
 * Turns untrusted input into a validated DTO instance, or throws a ValidationError naming every
 * bad field (nested fields as `rules.minWidth`). Unknown properties are rejected, not ignored, so
 * a typo (`minWidht`) is reported instead of silently doing nothing. The input's shape (depth,
 * size, plain data only) is checked first, and class-transformer reads only the checked copy.
 */
export function parseInput<T extends object>(dtoClass: ClassConstructor<T>, input: unknown): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError({ input: ['must be an object'] });
  }
  const dto = plainToInstance(dtoClass, plainInput(input));
  const errors = validateSync(dto, {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
  });
  if (errors.length > 0) throw new ValidationError(collect(errors, '', {}));
  return dto;
}

/** A user id must be a uuid; anything else is bad input (not a lookup that finds nothing). */
export function assertUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || !isUUID(userId)) {
    throw new ValidationError({ userId: ['userId must be a UUID'] });
  }
}

/**
 * Ids are `serial` (int4). A value that cannot be an id cannot name a row either, so it gets the
 * same NotFoundError as a missing id rather than a driver error about int4 range.
 */
export function assertId(resource: string, id: unknown): asserts id is number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_ID) {
    throw new NotFoundError(resource, String(id));
  }
}
