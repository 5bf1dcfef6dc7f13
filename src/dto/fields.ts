import { ValidateBy, type ValidationArguments } from 'class-validator';
import { getMetadataArgsStorage } from 'typeorm';
import { INTEGER_RANGES, NAME_MAX_LENGTH } from '../entities/columns';

/**
 * The one place that says what an input field may hold, for every DTO and for the rows
 * `ingestImages` takes. Each rule is a pure function (`integerProblem`, `textProblem`) that
 * returns what is wrong with a value, or undefined; the decorators below wrap the same functions
 * for class-validator, so a DTO and a hand-rolled row check can never disagree.
 *
 * The bounds come from the column the value lands in: an int4 column takes at most 2^31 - 1, a
 * varchar(n) at most n characters (PostgreSQL counts characters, as JavaScript's length does for
 * everything outside the astral planes; counting code points keeps the two in step), and no text
 * column takes a NUL byte. A value past those bounds would otherwise reach PostgreSQL and come
 * back as a driver error instead of a ValidationError naming the field.
 */

export { INTEGER_RANGES, MAX_ID, type IntegerColumnType } from '../entities/columns';

/** A class whose properties TypeORM maps to columns (an entity). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type EntityClass = Function;

const columns = new Map<EntityClass, Map<string, { type: string; length?: number }>>();

/**
 * The TypeORM column options of `entity.property`, from the decorators' metadata (looked up once
 * per column: ingestImages checks every row of a batch with these).
 */
export function columnOf(entity: EntityClass, property: string): { type: string; length?: number } {
  let byProperty = columns.get(entity);
  if (!byProperty) {
    byProperty = new Map();
    columns.set(entity, byProperty);
  }
  const cached = byProperty.get(property);
  if (cached) return cached;
  const column = getMetadataArgsStorage()
    .filterColumns(entity)
    .find((c) => c.propertyName === property);
  if (!column) throw new Error(`${entity.name}.${property} is not a column`);
  const type = column.options.type;
  const found = {
    type: typeof type === 'string' ? type : String(type),
    length: column.options.length === undefined ? undefined : Number(column.options.length),
  };
  byProperty.set(property, found);
  return found;
}

export interface IntegerSpec {
  /** The column the value is stored in or compared with (its type bounds the value)... */
  column?: [EntityClass, string];
  /** ...or the column type itself, for values that are not stored (offsets). Default int. */
  type?: keyof typeof INTEGER_RANGES;
  min?: number;
  max?: number;
  /** The phrase for a value below min, when "must be at least <min>" reads badly. */
  belowMin?: string;
}

/**
 * Bounds and limits computed once per spec (a spec is a constant of its caller): ingestImages
 * checks every field of every row of a batch with the same few specs.
 */
const boundsOfSpec = new WeakMap<IntegerSpec, { min: number; max: number }>();
const limitOfSpec = new WeakMap<TextSpec, number | undefined>();

function integerBounds(spec: IntegerSpec): { min: number; max: number } {
  let bounds = boundsOfSpec.get(spec);
  if (bounds === undefined) {
    bounds = computeIntegerBounds(spec);
    boundsOfSpec.set(spec, bounds);
  }
  return bounds;
}

function computeIntegerBounds(spec: IntegerSpec): { min: number; max: number } {
  const type = spec.column ? columnOf(...spec.column).type : (spec.type ?? 'int');
  const range = INTEGER_RANGES[type === 'bigint' || type === 'int8' ? 'bigint' : 'int'];
  return {
    min: Math.max(spec.min ?? range.min, range.min),
    max: Math.min(spec.max ?? range.max, range.max),
  };
}

/** What is wrong with an integer input, as a phrase following the field's name. */
export function integerProblem(value: unknown, spec: IntegerSpec): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value)) return 'must be an integer';
  const { min, max } = integerBounds(spec);
  if (value < min) {
    if (spec.belowMin) return spec.belowMin;
    return min === 0 ? 'must not be negative' : `must be at least ${min}`;
  }
  if (value > max) return `must be at most ${max}`;
  return undefined;
}

export interface TextSpec {
  /** The column the text is stored in (its varchar length bounds the text)... */
  column?: [EntityClass, string];
  /** ...or an explicit limit, for text stored inside jsonb or not stored at all. */
  maxLength?: number;
  /** Default false: an empty string is refused. */
  allowEmpty?: boolean;
}

function textLimit(spec: TextSpec): number | undefined {
  if (limitOfSpec.has(spec)) return limitOfSpec.get(spec);
  const limit = computeTextLimit(spec);
  limitOfSpec.set(spec, limit);
  return limit;
}

function computeTextLimit(spec: TextSpec): number | undefined {
  const limits = [spec.maxLength, spec.column ? columnOf(...spec.column).length : undefined];
  const set = limits.filter((limit): limit is number => limit !== undefined);
  return set.length ? Math.min(...set) : undefined;
}

/** What is wrong with a text input, as a phrase following the field's name. */
export function textProblem(value: unknown, spec: TextSpec): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (!spec.allowEmpty && value.length === 0) return 'must not be empty';
  // PostgreSQL text cannot hold U+0000: it would fail in the driver, not here.
  if (value.includes('\u0000')) return 'must not contain a NUL byte (\\u0000)';
  const limit = textLimit(spec);
  // UTF-16 length >= code points: count code points only when the length alone is over.
  if (limit !== undefined && value.length > limit && [...value].length > limit) {
    return `must be at most ${limit} characters`;
  }
  return undefined;
}

export interface TextListSpec {
  item: TextSpec;
  minItems?: number;
  maxItems: number;
}

/** What is wrong with a list of texts (jsonb arrays: keywords, formats), naming the entry. */
export function textListProblem(value: unknown, spec: TextListSpec): string | undefined {
  if (!Array.isArray(value)) return 'must be an array of strings';
  if (value.length < (spec.minItems ?? 0)) {
    return `must hold at least ${spec.minItems} entr${spec.minItems === 1 ? 'y' : 'ies'}`;
  }
  if (value.length > spec.maxItems) return `must hold at most ${spec.maxItems} entries`;
  for (const [index, item] of value.entries()) {
    const problem = textProblem(item, spec.item);
    if (problem) return `entry ${index} ${problem}`;
  }
  return undefined;
}

/** A class-validator decorator from one of the problem functions above. */
function fieldRule(name: string, problem: (value: unknown) => string | undefined) {
  return ValidateBy({
    name,
    validator: {
      validate: (value: unknown) => problem(value) === undefined,
      defaultMessage: (args?: ValidationArguments) =>
        `${args?.property ?? 'value'} ${problem(args?.value) ?? 'is invalid'}`,
    },
  });
}

/** An integer within its column's type and the given bounds. */
export const IntField = (spec: IntegerSpec = {}): PropertyDecorator =>
  fieldRule('integerField', (value) => integerProblem(value, spec));

/** A string: not empty (unless allowed), no NUL byte, within its column's length. */
export const TextField = (spec: TextSpec = {}): PropertyDecorator =>
  fieldRule('textField', (value) => textProblem(value, spec));

/** An array of strings, each a TextField; messages name the bad entry's index. */
export const TextListField = (spec: TextListSpec): PropertyDecorator =>
  fieldRule('textListField', (value) => textListProblem(value, spec));

/** A `name`: a non-empty string that fits the name columns (varchar(100)). */
export const NameField = (): PropertyDecorator => TextField({ maxLength: NAME_MAX_LENGTH });

/** The id of a row (serial): a positive int4. */
export const IdField = (): PropertyDecorator =>
  IntField({ type: 'int', min: 1, belowMin: 'must be positive' });
