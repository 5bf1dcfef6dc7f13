import { isURL } from 'class-validator';
import { STORAGE_URL_OPTIONS, WEB_URL_OPTIONS } from '../entities/columns';
import { Image } from '../entities/image.entity';
import { ValidationError } from '../errors';
import type { NewImage } from '../repositories/image.repository';
import { integerProblem, textProblem } from './fields';

/** How many bad rows one ValidationError lists: enough to see the pattern, bounded in size. */
const MAX_REPORTED_ROWS = 20;

const NEW_IMAGE_KEYS = new Set<string>([
  'originalUrl',
  'filename',
  'storageUrl',
  'width',
  'height',
  'fileSize',
  'format',
]);

/** A scheme (`s3:`, `file:`) at the start: the value is a URL, not a key under a storage root. */
const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

function storageUrlProblem(value: string): string | undefined {
  if (HAS_SCHEME.test(value)) {
    return isURL(value, STORAGE_URL_OPTIONS)
      ? undefined
      : 'must be an http(s), s3, gs or file URL, or a relative storage key';
  }
  if (value.startsWith('/') || value.includes('\\') || value.split('/').includes('..')) {
    return 'must be a relative storage key without "..", "\\" or a leading "/"';
  }
  return undefined;
}

/** What is wrong with each field of one row, by field name. */
function rowProblems(row: unknown): Record<string, string> {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    return { '': 'must be an object' };
  }
  const image = row as Record<string, unknown>;
  const problems: Record<string, string | undefined> = {};
  for (const key of Object.keys(image)) {
    if (!NEW_IMAGE_KEYS.has(key)) problems[key] = 'is not a field of an image';
  }
  problems.originalUrl =
    textProblem(image.originalUrl, { column: [Image, 'originalUrl'] }) ??
    (isURL(image.originalUrl as string, WEB_URL_OPTIONS) ? undefined : 'must be an http(s) URL');
  problems.filename =
    textProblem(image.filename, { column: [Image, 'filename'] }) ??
    (/[/\\]/.test(image.filename as string)
      ? 'must not contain a path separator (/ or \\)'
      : (image.filename as string).includes('..')
        ? 'must not contain ".."'
        : undefined);
  if (image.storageUrl !== undefined && image.storageUrl !== null) {
    problems.storageUrl =
      textProblem(image.storageUrl, { column: [Image, 'storageUrl'] }) ??
      storageUrlProblem(image.storageUrl as string);
  }
  for (const key of ['width', 'height', 'fileSize'] as const) {
    if (image[key] !== undefined && image[key] !== null) {
      problems[key] = integerProblem(image[key], { column: [Image, key], min: 0 });
    }
  }
  if (image.format !== undefined && image.format !== null) {
    problems.format = textProblem(image.format, { column: [Image, 'format'] });
  }
  return Object.fromEntries(
    Object.entries(problems).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/**
 * The crawler's batch for `ingestImages`, checked row by row with the same field rules as every
 * DTO, or a ValidationError whose fields name the row and the field (`images[3].filename`).
 * Written as plain checks rather than a class-validator class per row: a batch may hold
 * hundreds of thousands of rows.
 */
export function parseNewImages(images: unknown): NewImage[] {
  if (!Array.isArray(images)) {
    throw new ValidationError({ images: ['images must be an array of images'] });
  }
  const fields: Record<string, string[]> = {};
  let badRows = 0;
  for (const [index, row] of images.entries()) {
    const problems = Object.entries(rowProblems(row));
    if (problems.length === 0) continue;
    badRows += 1;
    if (badRows > MAX_REPORTED_ROWS) continue;
    for (const [field, problem] of problems) {
      const path = field ? `images[${index}].${field}` : `images[${index}]`;
      fields[path] = [`${field || `images[${index}]`} ${problem}`];
    }
  }
  if (badRows > MAX_REPORTED_ROWS) {
    fields.images = [`${badRows} rows are invalid; the first ${MAX_REPORTED_ROWS} are listed`];
  }
  if (badRows > 0) throw new ValidationError(fields);
  return images as NewImage[];
}
