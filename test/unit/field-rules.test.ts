import 'reflect-metadata';
import type { ClassConstructor } from 'class-transformer';
import {
  ChunkProgressDto,
  columnOf,
  CreateCrawlJobDto,
  CreateExportJobDto,
  CreateProfileDto,
  CreateProjectDto,
  CreateValidationJobDto,
  IdPageDto,
  integerProblem,
  KeysetPageDto,
  PageDto,
  parseInput,
  textListProblem,
  textProblem,
} from '../../src/dto';
import { CrawlJob, Image, Profile } from '../../src/entities';
import { ValidationError } from '../../src/errors';

const INT4_MAX = 2_147_483_647;
const uuid = '5b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11';

function fieldsOf(dto: ClassConstructor<object>, input: unknown): Record<string, string[]> {
  try {
    parseInput(dto, input);
  } catch (error) {
    if (error instanceof ValidationError) return error.fields;
    throw error;
  }
  throw new Error('input was accepted');
}

const valid: Array<[ClassConstructor<object>, Record<string, unknown>]> = [
  [CreateProfileDto, { id: uuid, email: 'a@b.co', fullName: 'Ann' }],
  [CreateProjectDto, { name: 'n', description: 'd' }],
  [CreateCrawlJobDto, { projectId: 1, name: 'n', keywords: ['cats'], maxImages: 10 }],
  [
    CreateValidationJobDto,
    {
      crawlJobId: 1,
      name: 'n',
      rules: { minWidth: 1, minHeight: 1, maxFileSize: 1, allowedFormats: ['png'] },
    },
  ],
  [CreateExportJobDto, { crawlJobId: 1, name: 'n', format: 'zip', options: { expiresInHours: 1 } }],
  [ChunkProgressDto, { startedChunks: 1, completedChunks: 1, failedChunks: 1, progress: 1 }],
  [PageDto, { limit: 1, offset: 1 }],
  [IdPageDto, { limit: 1, beforeId: 1 }],
  [KeysetPageDto, { limit: 1, cursor: 'abc' }],
];

/** Every (dto, path) whose value in the valid input is of the given type, nested ones too. */
function fieldsOfType(type: 'string' | 'number') {
  const cases: Array<[string, ClassConstructor<object>, Record<string, unknown>, string]> = [];
  const walk = (
    dto: ClassConstructor<object>,
    root: Record<string, unknown>,
    value: unknown,
    path: string[],
  ) => {
    if (typeof value === type) {
      cases.push([`${dto.name}.${path.join('.')}`, dto, root, path.join('.')]);
    } else if (Array.isArray(value)) {
      if (typeof value[0] === type)
        cases.push([`${dto.name}.${path.join('.')}[0]`, dto, root, path.join('.')]);
    } else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) walk(dto, root, inner, [...path, key]);
    }
  };
  for (const [dto, input] of valid) walk(dto, input, input, []);
  return cases;
}

function replaced(input: Record<string, unknown>, path: string, make: (old: unknown) => unknown) {
  const copy = structuredClone(input);
  const keys = path.split('.');
  let at: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  const last = keys.at(-1)!;
  const old = at[last];
  at[last] = Array.isArray(old) ? [make(old[0])] : make(old);
  return copy;
}

describe('the field rules every DTO shares', () => {
  it.each(valid)('%p accepts its valid input', (dto, input) => {
    expect(() => parseInput(dto, input)).not.toThrow();
  });

  it.each(fieldsOfType('string'))(
    '%s refuses a NUL byte, naming the field',
    (_l, dto, input, path) => {
      const fields = fieldsOf(
        dto,
        replaced(input, path, (old) => `${String(old)}\u0000x`),
      );
      expect(Object.keys(fields)).toEqual([path]);
    },
  );

  it.each(fieldsOfType('number'))(
    '%s refuses an integer beyond int4 and 1e300, naming the field',
    (_l, dto, input, path) => {
      for (const big of [INT4_MAX + 1, 1e300, Number.MAX_SAFE_INTEGER + 2]) {
        const fields = fieldsOf(
          dto,
          replaced(input, path, () => big),
        );
        expect(Object.keys(fields)).toEqual([path]);
      }
    },
  );

  it('accepts the largest int4 where the column allows it', () => {
    expect(() =>
      parseInput(CreateCrawlJobDto, {
        projectId: INT4_MAX,
        name: 'n',
        keywords: ['k'],
        maxImages: INT4_MAX,
      }),
    ).not.toThrow();
    expect(fieldsOf(PageDto, { offset: 1e300 })).toEqual({
      offset: [`offset must be at most ${INT4_MAX}`],
    });
  });

  it('takes string lengths and integer types from the entity columns', () => {
    expect(columnOf(Profile, 'fullName')).toEqual({ type: 'varchar', length: 100 });
    expect(columnOf(Image, 'format')).toEqual({ type: 'varchar', length: 10 });
    expect(columnOf(CrawlJob, 'maxImages').type).toBe('int');
    expect(
      fieldsOf(CreateProfileDto, { id: uuid, email: 'a@b.co', fullName: 'x'.repeat(101) }),
    ).toEqual({
      fullName: ['fullName must be at most 100 characters'],
    });
    expect(
      fieldsOf(CreateValidationJobDto, {
        crawlJobId: 1,
        name: 'n',
        rules: { allowedFormats: ['x'.repeat(11)] },
      }),
    ).toEqual({ 'rules.allowedFormats': ['allowedFormats entry 0 must be at most 10 characters'] });
  });

  it('counts characters as PostgreSQL does (an emoji is one)', () => {
    expect(textProblem('😀'.repeat(100), { maxLength: 100 })).toBeUndefined();
    expect(textProblem('😀'.repeat(101), { maxLength: 100 })).toMatch(/at most 100/);
  });

  it('say what is wrong in words that follow the field name', () => {
    expect(integerProblem('1', { min: 0 })).toBe('must be an integer');
    expect(integerProblem(-1, { min: 0 })).toBe('must not be negative');
    expect(integerProblem(0, { min: 1 })).toBe('must be at least 1');
    expect(integerProblem(0, { min: 1, belowMin: 'must be positive' })).toBe('must be positive');
    expect(integerProblem(2 ** 53, { type: 'bigint' })).toBe(
      `must be at most ${Number.MAX_SAFE_INTEGER}`,
    );
    expect(textProblem('', {})).toBe('must not be empty');
    expect(textListProblem(['a', 'b\u0000'], { item: {}, maxItems: 5 })).toBe(
      'entry 1 must not contain a NUL byte (\\u0000)',
    );
  });
});

describe('sign-up input', () => {
  it('never carries a role', () => {
    expect(
      Object.keys(fieldsOf(CreateProfileDto, { id: uuid, email: 'a@b.co', role: 'admin' })),
    ).toEqual(['role']);
  });

  it('lower-cases the email', () => {
    expect(parseInput(CreateProfileDto, { id: uuid, email: ' Ann@Example.COM ' }).email).toBe(
      'ann@example.com',
    );
  });
});
