import { ValidationError } from '../errors';

/**
 * How deeply input may nest, counting the input object itself as level 1. The deepest real
 * input is 3 (`{ rules: { allowedFormats: [...] } }`); class-transformer and class-validator
 * recurse once per level, so a 5,000-level object would end in a RangeError (stack overflow)
 * instead of a ValidationError.
 */
export const MAX_INPUT_DEPTH = 32;

/**
 * How many values (object entries and array elements, at every level, counted together) one
 * input may hold. The largest real input is a crawl job with 100 keywords; a bound keeps a
 * giant payload from costing a transformation and a validation pass per value.
 */
export const MAX_INPUT_VALUES = 10_000;

/** Keys no DTO has, which class-transformer skips or misreads (`value.constructor`). */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor']);

/** How much of a path an error names: enough to find the field, bounded in size. */
const SHOWN_SEGMENTS = 4;
const SHOWN_KEY_LENGTH = 40;

type Segment = string | number;

/** One object or array being copied; the frames on the stack are the current value's ancestors. */
interface Frame {
  source: object;
  copy: Record<string, unknown> | unknown[];
  /** Its keys (arrays: undefined, the indexes 0..size-1 are read without listing them). */
  keys: string[] | undefined;
  size: number;
  next: number;
  /** Where it sits in its parent (undefined for the input itself). */
  segment: Segment | undefined;
}

/** `rules.allowedFormats[2]`, cut after a few segments (`a.a.a.a…`) and long keys shortened. */
function showPath(segments: Segment[]): string {
  if (segments.length === 0) return 'input';
  const shown = segments.slice(0, SHOWN_SEGMENTS).map((segment, i) => {
    if (typeof segment === 'number') return `[${segment}]`;
    const key =
      segment.length > SHOWN_KEY_LENGTH ? `${segment.slice(0, SHOWN_KEY_LENGTH)}…` : segment;
    return i === 0 ? key : `.${key}`;
  });
  return shown.join('') + (segments.length > SHOWN_SEGMENTS ? '…' : '');
}

function refuse(segments: Segment[], problem: string): never {
  const path = showPath(segments);
  throw new ValidationError({ [path]: [`${path} ${problem}`] });
}

function frameOf(source: object, segment: Segment | undefined): Frame {
  if (Array.isArray(source)) {
    // The length alone: a sparse array may claim billions of elements.
    return { source, copy: [], keys: undefined, size: source.length, next: 0, segment };
  }
  const keys = Object.keys(source);
  return { source, copy: {}, keys, size: keys.length, next: 0, segment };
}

/**
 * A plain-data copy of untrusted input, or a ValidationError naming the path where it nests
 * deeper than MAX_INPUT_DEPTH, holds more than MAX_INPUT_VALUES values, refers to itself, has a
 * getter or a `__proto__`/`constructor` key. Only this copy reaches class-transformer, so what
 * is validated is exactly what was checked: a getter or a Proxy cannot answer differently the
 * second time, and no class instance's constructor is called. Iterative (a stack of frames, not
 * recursion), so the check cannot itself overflow the stack.
 *
 * Own enumerable data properties are copied (arrays: their elements; holes stay holes), which is
 * all class-transformer reads of plain data; everything else is left out.
 */
export function plainInput(input: object): Record<string, unknown> {
  const root = frameOf(input, undefined);
  const stack: Frame[] = [root];
  const ancestors = new Set<object>([input]);
  const pathTo = (segment: Segment) => [
    ...stack.slice(1).map((frame) => frame.segment as Segment),
    segment,
  ];
  const tooMany = `takes the input past ${MAX_INPUT_VALUES} values (entries and elements at every level)`;
  let values = root.size;
  if (values > MAX_INPUT_VALUES) {
    refuse([], `holds more than ${MAX_INPUT_VALUES} values (entries and elements at every level)`);
  }
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.next === frame.size) {
      // Trailing holes too: the copy is as long as the array (its length was counted).
      if (Array.isArray(frame.copy)) frame.copy.length = frame.size;
      stack.pop();
      ancestors.delete(frame.source);
      continue;
    }
    const index = frame.next++;
    const segment: Segment = frame.keys ? frame.keys[index] : index;
    if (typeof segment === 'string' && FORBIDDEN_KEYS.has(segment)) {
      refuse(pathTo(segment), 'should not exist');
    }
    const descriptor = Object.getOwnPropertyDescriptor(frame.source, segment);
    if (descriptor === undefined) continue; // an array's hole
    if (!('value' in descriptor)) refuse(pathTo(segment), 'must be a plain value, not a getter');
    const value: unknown = descriptor.value;
    if (typeof value !== 'object' || value === null) {
      // Never `__proto__` (refused above): assignment defines an own property.
      (frame.copy as Record<Segment, unknown>)[segment] = value;
      continue;
    }
    if (ancestors.has(value)) {
      refuse(pathTo(segment), 'refers to an object that contains it (a cycle)');
    }
    if (stack.length >= MAX_INPUT_DEPTH) {
      refuse(pathTo(segment), `is nested more than ${MAX_INPUT_DEPTH} levels deep`);
    }
    const child = frameOf(value, segment);
    values += child.size;
    if (values > MAX_INPUT_VALUES) refuse(pathTo(segment), tooMany);
    (frame.copy as Record<Segment, unknown>)[segment] = child.copy;
    stack.push(child);
    ancestors.add(value);
  }
  return root.copy as Record<string, unknown>;
}
