import 'reflect-metadata';
import type { ClassConstructor } from 'class-transformer';
import {
  ChunkProgressDto,
  CreateCrawlJobDto,
  CreateExportJobDto,
  CreateProfileDto,
  CreateProjectDto,
  CreateValidationJobDto,
  KeysetPageDto,
  ListCrawlJobsDto,
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
