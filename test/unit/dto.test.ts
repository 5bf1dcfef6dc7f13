import 'reflect-metadata';
import { plainToInstance, type ClassConstructor } from 'class-transformer';
import {
  ChunkProgressDto,
  CreateCrawlJobDto,
  CreateExportJobDto,
  CreateProfileDto,
  CreateProjectDto,
  CreateValidationJobDto,
  KeysetPageDto,
  ListCrawlJobsDto,
  MAX_INPUT_DEPTH,
  MAX_INPUT_VALUES,
  PageDto,
  parseInput,
  ValidationRulesDto,
} from '../../src/dto';
import { ValidationError } from '../../src/errors';

function fieldsOf(dto: ClassConstructor<object>, input: unknown): Record<string, string[]> {
  try {
    parseInput(dto, input);
  } catch (error) {
    if (error instanceof ValidationError) return error.fields;
    throw error;
  }
  throw new Error('input was accepted');
}

const validCrawlJob = { projectId: 1, name: 'n', keywords: ['cats'] };
const validValidation = { crawlJobId: 1, name: 'n', rules: {} };
const validExport = { crawlJobId: 1, name: 'n', format: 'zip' };

const rejected: [string, ClassConstructor<object>, unknown, string][] = [
  ['CreateProfileDto: id not a uuid', CreateProfileDto, { id: 'x', email: 'a@b.co' }, 'id'],
  [
    'CreateProfileDto: bad email',
    CreateProfileDto,
    { id: '5b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11', email: 'nope' },
    'email',
  ],
  [
    'CreateProfileDto: unknown role',
    CreateProfileDto,
    { id: '5b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11', email: 'a@b.co', role: 'root' },
    'role',
  ],
  ['CreateProjectDto: empty name', CreateProjectDto, { name: '' }, 'name'],
  ['CreateProjectDto: name too long', CreateProjectDto, { name: 'x'.repeat(101) }, 'name'],
  [
    'CreateProjectDto: description not a string',
    CreateProjectDto,
    { name: 'n', description: 3 },
    'description',
  ],
  ['CreateProjectDto: unknown property', CreateProjectDto, { name: 'n', owner: 'me' }, 'owner'],
  [
    'CreateCrawlJobDto: no keywords',
    CreateCrawlJobDto,
    { ...validCrawlJob, keywords: [] },
    'keywords',
  ],
  [
    'CreateCrawlJobDto: empty keyword',
    CreateCrawlJobDto,
    { ...validCrawlJob, keywords: ['a', ''] },
    'keywords',
  ],
  [
    'CreateCrawlJobDto: negative maxImages',
    CreateCrawlJobDto,
    { ...validCrawlJob, maxImages: -1 },
    'maxImages',
  ],
  [
    'CreateCrawlJobDto: projectId a string',
    CreateCrawlJobDto,
    { ...validCrawlJob, projectId: '1' },
    'projectId',
  ],
  [
    'ChunkProgressDto: negative count',
    ChunkProgressDto,
    { completedChunks: -2 },
    'completedChunks',
  ],
  ['ChunkProgressDto: progress over 100', ChunkProgressDto, { progress: 101 }, 'progress'],
  ['ValidationRulesDto: negative minWidth', ValidationRulesDto, { minWidth: -1 }, 'minWidth'],
  ['ValidationRulesDto: fractional minHeight', ValidationRulesDto, { minHeight: 1.5 }, 'minHeight'],
  [
    'ValidationRulesDto: negative maxFileSize',
    ValidationRulesDto,
    { maxFileSize: -5 },
    'maxFileSize',
  ],
  [
    'ValidationRulesDto: formats not strings',
    ValidationRulesDto,
    { allowedFormats: [1] },
    'allowedFormats',
  ],
  ['ValidationRulesDto: typo in a rule name', ValidationRulesDto, { minWidht: 10 }, 'minWidht'],
  [
    'CreateValidationJobDto: rules missing',
    CreateValidationJobDto,
    { crawlJobId: 1, name: 'n' },
    'rules',
  ],
  [
    'CreateValidationJobDto: nested rule bad',
    CreateValidationJobDto,
    { ...validValidation, rules: { minWidth: -1 } },
    'rules.minWidth',
  ],
  [
    'CreateValidationJobDto: name too long',
    CreateValidationJobDto,
    { ...validValidation, name: 'x'.repeat(101) },
    'name',
  ],
  [
    'CreateExportJobDto: unknown format',
    CreateExportJobDto,
    { ...validExport, format: 'rar' },
    'format',
  ],
  [
    'CreateExportJobDto: onlyValid not boolean',
    CreateExportJobDto,
    { ...validExport, options: { onlyValid: 'yes' } },
    'options.onlyValid',
  ],
  [
    'CreateExportJobDto: expiresInHours zero',
    CreateExportJobDto,
    { ...validExport, options: { expiresInHours: 0 } },
    'options.expiresInHours',
  ],
  [
    'CreateExportJobDto: unknown option',
    CreateExportJobDto,
    { ...validExport, options: { compress: true } },
    'options.compress',
  ],
  ['PageDto: limit over 100', PageDto, { limit: 1000 }, 'limit'],
  ['PageDto: negative offset', PageDto, { offset: -1 }, 'offset'],
  ['ListCrawlJobsDto: unknown status', ListCrawlJobsDto, { status: 'done' }, 'status'],
  ['KeysetPageDto: cursor not a string', KeysetPageDto, { cursor: 5 }, 'cursor'],
];

describe('input DTOs', () => {
  it.each(rejected)('%s is rejected with the field named', (_label, dto, input, field) => {
    const fields = fieldsOf(dto, input);
    expect(Object.keys(fields)).toContain(field);
    expect(fields[field].join(' ')).toMatch(new RegExp(field.split('.').at(-1)!));
  });

  it.each([
    [
      'CreateProfileDto',
      CreateProfileDto,
      { id: '5b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11', email: 'a@b.co' },
    ],
    ['CreateProjectDto', CreateProjectDto, { name: 'n', description: 'd' }],
    ['CreateCrawlJobDto', CreateCrawlJobDto, { ...validCrawlJob, maxImages: 0 }],
    [
      'CreateValidationJobDto',
      CreateValidationJobDto,
      { ...validValidation, rules: { minWidth: 0, allowedFormats: ['PNG'] } },
    ],
    [
      'CreateExportJobDto',
      CreateExportJobDto,
      { ...validExport, options: { onlyValid: true, expiresInHours: 1 } },
    ],
    ['ChunkProgressDto', ChunkProgressDto, {}],
  ] as [string, ClassConstructor<object>, unknown][])(
    '%s accepts valid input',
    (_label, dto, input) => {
      expect(() => parseInput(dto, input)).not.toThrow();
    },
  );

  it('lists every bad field at once', () => {
    expect(
      Object.keys(
        fieldsOf(CreateExportJobDto, { crawlJobId: 'x', name: '', format: 'rar' }),
      ).sort(),
    ).toEqual(['crawlJobId', 'format', 'name']);
  });

  it('rejects input that is not an object', () => {
    expect(fieldsOf(CreateProjectDto, null)).toEqual({ input: ['must be an object'] });
    expect(fieldsOf(CreateProjectDto, ['a'])).toEqual({ input: ['must be an object'] });
  });

  it('lower-cases allowed formats', () => {
    expect(
      parseInput(ValidationRulesDto, { allowedFormats: ['JPEG', 'Png'] }).allowedFormats,
    ).toEqual(['jpeg', 'png']);
  });
});

describe('the fields several DTOs share', () => {
  it('name each field in their messages', () => {
    expect(fieldsOf(CreateCrawlJobDto, { ...validCrawlJob, projectId: 0, name: '' })).toEqual({
      projectId: ['projectId must be positive'],
      name: ['name must not be empty'],
    });
    expect(
      fieldsOf(CreateExportJobDto, { ...validExport, crawlJobId: 1.5, name: 'x'.repeat(101) }),
    ).toEqual({
      crawlJobId: ['crawlJobId must be an integer'],
      name: ['name must be at most 100 characters'],
    });
    expect(fieldsOf(CreateProjectDto, { name: 7 }).name).toContain('name must be a string');
  });
});

/** `{ a: { a: … leaf } }`, `levels` objects deep (built in a loop: no recursion here either). */
function nested(levels: number, leaf: unknown = 1): Record<string, unknown> {
  let value: unknown = leaf;
  for (let i = 0; i < levels; i += 1) value = { a: value };
  return value as Record<string, unknown>;
}

describe('the shape of input, checked before class-transformer sees it', () => {
  const validInputs: [string, ClassConstructor<object>, Record<string, unknown>][] = [
    ['CreateCrawlJobDto', CreateCrawlJobDto, { ...validCrawlJob, keywords: ['a', 'b'] }],
    [
      'CreateValidationJobDto',
      CreateValidationJobDto,
      { ...validValidation, rules: { minWidth: 0, allowedFormats: ['PNG'] } },
    ],
    ['CreateExportJobDto', CreateExportJobDto, { ...validExport, options: { onlyValid: true } }],
  ];

  it.each(validInputs)('%s parses valid input exactly as before', (_label, dto, input) => {
    expect(parseInput(dto, input)).toEqual(plainToInstance(dto, input));
  });

  it.each([
    ['CreateProfileDto', CreateProfileDto, (deep: unknown) => deep, 'a.a.a.a…'],
    [
      'CreateProjectDto',
      CreateProjectDto,
      (deep: unknown) => ({ name: 'n', description: deep }),
      'description.a.a.a…',
    ],
    [
      'CreateCrawlJobDto',
      CreateCrawlJobDto,
      (deep: unknown) => ({ ...validCrawlJob, keywords: [deep] }),
      'keywords[0].a.a…',
    ],
    [
      'CreateValidationJobDto',
      CreateValidationJobDto,
      (deep: unknown) => ({ ...validValidation, rules: deep }),
      'rules.a.a.a…',
    ],
    [
      'CreateExportJobDto',
      CreateExportJobDto,
      (deep: unknown) => ({ ...validExport, options: deep }),
      'options.a.a.a…',
    ],
  ] as [string, ClassConstructor<object>, (deep: unknown) => unknown, string][])(
    '%s refuses an object 5,000 levels deep with a ValidationError naming the path',
    (_label, dto, wrap, path) => {
      expect(fieldsOf(dto, wrap(nested(5000)))).toEqual({
        [path]: [`${path} is nested more than ${MAX_INPUT_DEPTH} levels deep`],
      });
    },
  );

  it('counts the input itself as level 1: 32 levels pass the shape check, 33 do not', () => {
    // nested(n) is n objects; under `rules` the first is at level 2.
    const deepest = { ...validValidation, rules: nested(MAX_INPUT_DEPTH - 1) };
    expect(Object.keys(fieldsOf(CreateValidationJobDto, deepest))).toEqual(['rules.a']);
    const past = { ...validValidation, rules: nested(MAX_INPUT_DEPTH) };
    expect(Object.keys(fieldsOf(CreateValidationJobDto, past))).toEqual(['rules.a.a.a…']);
  });

  it('refuses a giant payload, wide or long, naming where the limit was passed', () => {
    const wide = Object.fromEntries(
      Array.from({ length: MAX_INPUT_VALUES + 1 }, (_, i) => [`k${i}`, i]),
    );
    expect(fieldsOf(CreateProjectDto, wide)).toEqual({
      input: [
        `input holds more than ${MAX_INPUT_VALUES} values (entries and elements at every level)`,
      ],
    });
    const long = { ...validCrawlJob, keywords: new Array<string>(MAX_INPUT_VALUES).fill('k') };
    expect(Object.keys(fieldsOf(CreateCrawlJobDto, long))).toEqual(['keywords']);
    // A sparse array is counted by its length, without visiting a billion holes.
    const sparse: unknown[] = [];
    sparse.length = 1e9;
    expect(
      Object.keys(fieldsOf(CreateCrawlJobDto, { ...validCrawlJob, keywords: sparse })),
    ).toEqual(['keywords']);
  });

  it('counts a shared object each time it appears, so sharing cannot multiply the work', () => {
    let shared: unknown = ['k'];
    for (let i = 0; i < 20; i += 1) shared = { a: shared, b: shared };
    expect(Object.keys(fieldsOf(CreateProjectDto, { name: 'n', description: shared }))).toEqual([
      expect.stringMatching(/^description\./),
    ]);
  });

  it('refuses a cycle, naming the key that closes it', () => {
    const rules: Record<string, unknown> = { minWidth: 1 };
    rules.self = { back: rules };
    expect(fieldsOf(CreateValidationJobDto, { ...validValidation, rules })).toEqual({
      'rules.self.back': ['rules.self.back refers to an object that contains it (a cycle)'],
    });
  });

  it.each([
    ['at the top', '{"name":"n","__proto__":{"a":1}}', '__proto__'],
    ['nested', '{"name":"n","description":{"__proto__":{"a":1}}}', 'description.__proto__'],
    ['constructor at the top', '{"name":"n","constructor":"x"}', 'constructor'],
    [
      'constructor nested',
      '{"name":"n","description":{"constructor":"x"}}',
      'description.constructor',
    ],
    [
      'constructor hiding a deep object',
      `{"name":"n","constructor":${JSON.stringify(nested(100))}}`,
      'constructor',
    ],
  ])('refuses a __proto__ or constructor key %s', (_label, json, path) => {
    expect(fieldsOf(CreateProjectDto, JSON.parse(json))).toEqual({
      [path]: [`${path} should not exist`],
    });
  });

  it('refuses a getter without calling it', () => {
    const input = { name: 'n' };
    const read = jest.fn(() => nested(5000));
    Object.defineProperty(input, 'description', { get: read, enumerable: true });
    expect(fieldsOf(CreateProjectDto, input)).toEqual({
      description: ['description must be a plain value, not a getter'],
    });
    expect(read).not.toHaveBeenCalled();
  });

  it('validates what it checked: a Proxy cannot answer differently the second time', () => {
    const target = { name: 'n', description: 'd' };
    const proxy = new Proxy(target, { get: () => nested(5000) });
    expect(parseInput(CreateProjectDto, proxy)).toEqual(plainToInstance(CreateProjectDto, target));
  });

  it('never calls the constructor of a class instance in the input', () => {
    let constructed = 0;
    class Options {
      onlyValid = true;
      constructor() {
        constructed += 1;
      }
    }
    const options = new Options();
    expect(parseInput(CreateExportJobDto, { ...validExport, options })).toMatchObject({
      options: { onlyValid: true },
    });
    expect(constructed).toBe(1);
  });
});
