import { Image } from '../entities/image.entity';
import { ValidationError } from '../errors';
import type { NewImage } from '../repositories/image.repository';
import { integerProblem, textProblem, type IntegerSpec, type TextSpec } from './fields';
import { isStorageUrl, isWebUrl } from './url-rules';

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

/** A `..` path segment, found without splitting the key into an array per row. */
const DOT_DOT_SEGMENT = /(?:^|\/)\.\.(?:\/|$)/;

function storageUrlProblem(value: string): string | undefined {
  if (HAS_SCHEME.test(value)) {
    return isStorageUrl(value)
      ? undefined
      : 'must be an http(s), s3, gs or file URL, or a relative storage key';
  }
  if (value.startsWith('/') || value.includes('\\') || DOT_DOT_SEGMENT.test(value)) {
    return 'must be a relative storage key without "..", "\\" or a leading "/"';
  }
  return undefined;
}

const ORIGINAL_URL: TextSpec = { column: [Image, 'originalUrl'] };
const FILENAME: TextSpec = { column: [Image, 'filename'] };
const STORAGE_URL: TextSpec = { column: [Image, 'storageUrl'] };
const FORMAT: TextSpec = { column: [Image, 'format'] };
const SIZES = {
  width: { column: [Image, 'width'], min: 0 },
  height: { column: [Image, 'height'], min: 0 },
  fileSize: { column: [Image, 'fileSize'], min: 0 },
} satisfies Record<string, IntegerSpec>;

function originalUrlProblem(value: unknown): string | undefined {
  return (
    textProblem(value, ORIGINAL_URL) ??
    (isWebUrl(value as string) ? undefined : 'must be an http(s) URL')
  );
}

function filenameProblem(value: unknown): string | undefined {
  const problem = textProblem(value, FILENAME);
  if (problem) return problem;
  const name = value as string;
  if (name.includes('/') || name.includes('\\')) {
    return 'must not contain a path separator (/ or \\)';
  }
  return name.includes('..') ? 'must not contain ".."' : undefined;
}

const present = (value: unknown) => value !== undefined && value !== null;

/**
 * What is wrong with each field of one row, by field name; undefined for a good row (the common
 * case, checked without allocating: a batch may hold hundreds of thousands of rows).
 */
function rowProblems(row: unknown): Record<string, string> | undefined {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    return { '': 'must be an object' };
  }
  const image = row as Record<string, unknown>;
  let unknownKey = false;
  for (const key in image) if (!NEW_IMAGE_KEYS.has(key)) unknownKey = true;
  const originalUrl = originalUrlProblem(image.originalUrl);
  const filename = filenameProblem(image.filename);
  const storageUrl = present(image.storageUrl)
    ? (textProblem(image.storageUrl, STORAGE_URL) ?? storageUrlProblem(image.storageUrl as string))
    : undefined;
  const width = present(image.width) ? integerProblem(image.width, SIZES.width) : undefined;
  const height = present(image.height) ? integerProblem(image.height, SIZES.height) : undefined;
  const fileSize = present(image.fileSize)
    ? integerProblem(image.fileSize, SIZES.fileSize)
    : undefined;
  const format = present(image.format) ? textProblem(image.format, FORMAT) : undefined;
  if (!unknownKey && !originalUrl && !filename && !storageUrl && !width && !height && !fileSize) {
    if (!format) return undefined;
  }
  const problems: Record<string, string | undefined> = {
    originalUrl,
    filename,
    storageUrl,
    width,
    height,
    fileSize,
    format,
  };
  for (const key of Object.keys(image)) {
    if (!NEW_IMAGE_KEYS.has(key)) problems[key] = 'is not a field of an image';
  }
  return Object.fromEntries(
    Object.entries(problems).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** The crawler's batch must be an array (its rows are checked one by one, see NewImageChecker). */
export function assertImageBatch(images: unknown): asserts images is unknown[] {
  if (!Array.isArray(images)) {
    throw new ValidationError({ images: ['images must be an array of images'] });
  }
}

/**
 * Checks the rows of a crawler's batch for `ingestImages` one at a time, with the same field
 * rules as every DTO, and gathers what is wrong into one ValidationError whose fields name the
 * row and the field (`images[3].filename`). Written as plain checks rather than a
 * class-validator class per row: a batch may hold hundreds of thousands of rows. ingestImages
 * checks each row as it encodes it for COPY, while the server is storing the rows before it.
 */
export class NewImageChecker {
  private readonly fields: Record<string, string[]> = {};
  private badRows = 0;

  /** Whether row `index` passes; a failing row's problems are kept for `finish`. */
  accept(row: unknown, index: number): row is NewImage {
    const found = rowProblems(row);
    if (found === undefined) return true;
    this.badRows += 1;
    if (this.badRows > MAX_REPORTED_ROWS) return false;
    for (const [field, problem] of Object.entries(found)) {
      const path = field ? `images[${index}].${field}` : `images[${index}]`;
      this.fields[path] = [`${field || `images[${index}]`} ${problem}`];
    }
    return false;
  }

  /** Throws the ValidationError of the rows that failed, if any did. */
  finish(): void {
    if (this.badRows === 0) return;
    if (this.badRows > MAX_REPORTED_ROWS) {
      this.fields.images = [
        `${this.badRows} rows are invalid; the first ${MAX_REPORTED_ROWS} are listed`,
      ];
    }
    throw new ValidationError(this.fields);
  }
}
