import 'reflect-metadata';
import { validate } from 'class-validator';
import {
  ActivityLog,
  CrawlJob,
  EXPORT_FORMATS,
  ExportJob,
  Image,
  JOB_STATUSES,
  PROFILE_ROLES,
  PROJECT_STATUSES,
  Profile,
  Project,
  ValidationJob,
} from '../../src/entities';

/**
 * Every rule the database enforces (check constraints, lengths, NOT NULL) and the shapes it
 * cannot (email, URLs) is also a class-validator rule on the entity, so an application can
 * `validate()` an entity without a database and learn what PostgreSQL would refuse.
 */

const USER_ID = '6f1c1a52-3c7e-4b8e-9a57-0d7a2f2c9b11';
const long = (length: number) => 'x'.repeat(length);

/** What breaking one rule looks like: the property, the bad value, the class-validator rule. */
type Break = [property: string, value: unknown, constraint: string];

interface EntityCase {
  /** A valid instance with every column set. */
  full: () => object;
  /** A valid instance with only the columns that have no default (what an insert needs). */
  minimal: () => object;
  breaks: Break[];
  /** Every value of each closed value set passes. */
  valueSets: Array<[property: string, values: readonly string[]]>;
}

/** The >= 0 rule of the check constraints on counts: -1 fails `min`, 1.5 fails `isInt`. */
const nonNegativeInts = (...properties: string[]): Break[] =>
  properties.flatMap((p): Break[] => [
    [p, -1, 'min'],
    [p, 1.5, 'isInt'],
  ]);
const percentage = (property: string): Break[] => [
  [property, -1, 'min'],
  [property, 101, 'max'],
];
const requiredName = (max: number): Break[] => [
  ['name', undefined, 'isDefined'],
  ['name', '', 'minLength'],
  ['name', long(max + 1), 'maxLength'],
];
const jobStatus: Break[] = [
  ['status', 'paused', 'isIn'],
  ['status', null, 'isIn'],
];

const CASES: Record<string, EntityCase> = {
  Profile: {
    full: () =>
      Object.assign(new Profile(), {
        id: USER_ID,
        email: 'ada@example.com',
        fullName: long(100),
        avatarUrl: 'https://cdn.example.com/a.png',
        role: 'admin',
      }),
    minimal: () => Object.assign(new Profile(), { id: USER_ID, email: 'ada@example.com' }),
    breaks: [
      ['id', 'not-a-uuid', 'isUuid'],
      ['id', undefined, 'isUuid'],
      ['email', undefined, 'isDefined'],
      ['email', 'ada.example.com', 'isEmail'],
      [
        'email',
        `${long(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.com`,
        'maxLength',
      ],
      ['fullName', long(101), 'maxLength'],
      ['avatarUrl', 'not a url', 'isUrl'],
      ['avatarUrl', 'ftp://example.com/a.png', 'isUrl'],
      ['role', 'superuser', 'isIn'],
      ['role', null, 'isIn'],
    ],
    valueSets: [['role', PROFILE_ROLES]],
  },
  Project: {
    full: () =>
      Object.assign(new Project(), {
        name: long(100),
        description: 'Cats for a classifier',
        userId: USER_ID,
        status: 'archived',
      }),
    minimal: () => Object.assign(new Project(), { name: 'Cats', userId: USER_ID }),
    breaks: [
      ...requiredName(100),
      ['userId', undefined, 'isUuid'],
      ['userId', 'someone', 'isUuid'],
      ['description', 42, 'isString'],
      ['status', 'paused', 'isIn'],
      ['status', null, 'isIn'],
    ],
    valueSets: [['status', PROJECT_STATUSES]],
  },
  CrawlJob: {
    full: () =>
      Object.assign(new CrawlJob(), {
        projectId: 1,
        name: long(100),
        keywords: ['cat', 'kitten'],
        maxImages: 0,
        status: 'running',
        progress: 100,
        totalImages: 10,
        downloadedImages: 9,
        validImages: 8,
        startedAt: new Date(),
        completedAt: null,
        totalChunks: 4,
        activeChunks: 1,
        completedChunks: 2,
        failedChunks: 1,
        taskIds: ['celery-1'],
      }),
    minimal: () => Object.assign(new CrawlJob(), { projectId: 1, name: 'Cats', keywords: ['cat'] }),
    breaks: [
      ['projectId', undefined, 'isInt'],
      ...requiredName(100),
      ['keywords', undefined, 'isArray'],
      ['keywords', [], 'arrayNotEmpty'],
      ['keywords', ['cat', 7], 'isString'],
      ['taskIds', null, 'isArray'],
      ['taskIds', [1], 'isString'],
      ...jobStatus,
      ...percentage('progress'),
      ...nonNegativeInts(
        'maxImages',
        'totalImages',
        'downloadedImages',
        'validImages',
        'totalChunks',
        'activeChunks',
        'completedChunks',
        'failedChunks',
      ),
    ],
    valueSets: [['status', JOB_STATUSES]],
  },
  Image: {
    full: () =>
      Object.assign(new Image(), {
        crawlJobId: 1,
        originalUrl: 'https://example.com/cat.jpg',
        filename: long(255),
        storageUrl: 's3://bucket/cat.jpg',
        width: 0,
        height: 480,
        fileSize: 12345,
        format: long(10),
      }),
    minimal: () =>
      Object.assign(new Image(), {
        crawlJobId: 1,
        originalUrl: 'http://example.com/cat.jpg',
        filename: 'cat.jpg',
      }),
    breaks: [
      ['crawlJobId', undefined, 'isInt'],
      ['originalUrl', undefined, 'isDefined'],
      ['originalUrl', 'cat.jpg', 'isUrl'],
      ['filename', undefined, 'isDefined'],
      ['filename', '', 'minLength'],
      ['filename', long(256), 'maxLength'],
      ['storageUrl', 'bucket/cat.jpg', 'isUrl'],
      ['format', long(11), 'maxLength'],
      ...nonNegativeInts('width', 'height', 'fileSize'),
    ],
    valueSets: [],
  },
  ActivityLog: {
    full: () =>
      Object.assign(new ActivityLog(), {
        userId: USER_ID,
        action: 'project.created',
        resourceType: long(50),
        resourceId: long(50),
        metadata: { projectId: 1 },
      }),
    minimal: () => Object.assign(new ActivityLog(), { action: 'signed_in', userId: null }),
    breaks: [
      ['userId', 'someone', 'isUuid'],
      ['action', undefined, 'isDefined'],
      ['action', '', 'minLength'],
      ['resourceType', long(51), 'maxLength'],
      ['resourceId', long(51), 'maxLength'],
      ['metadata', 'text', 'isObject'],
    ],
    valueSets: [],
  },
  ValidationJob: {
    full: () =>
      Object.assign(new ValidationJob(), {
        crawlJobId: 1,
        name: long(100),
        status: 'completed',
        progress: 0,
        totalImages: 3,
        validatedImages: 2,
        invalidImages: 1,
        validationRules: { minWidth: 100, allowedFormats: ['jpeg'] },
        errorMessage: null,
      }),
    minimal: () => Object.assign(new ValidationJob(), { crawlJobId: 1, name: 'Sizes' }),
    breaks: [
      ['crawlJobId', undefined, 'isInt'],
      ...requiredName(100),
      ...jobStatus,
      ...percentage('progress'),
      ...nonNegativeInts('totalImages', 'validatedImages', 'invalidImages'),
      ['validationRules', null, 'isObject'],
    ],
    valueSets: [['status', JOB_STATUSES]],
  },
  ExportJob: {
    full: () =>
      Object.assign(new ExportJob(), {
        crawlJobId: 1,
        userId: USER_ID,
        name: long(100),
        status: 'failed',
        progress: 50,
        format: 'jsonl',
        totalImages: 3,
        exportedImages: 1,
        fileSize: 3 * 1024 ** 3,
        downloadUrl: 'https://downloads.example.com/export.zip',
        exportOptions: { onlyValid: true },
        errorMessage: 'disk full',
      }),
    minimal: () =>
      Object.assign(new ExportJob(), { crawlJobId: 1, userId: USER_ID, name: 'Dataset' }),
    breaks: [
      ['crawlJobId', undefined, 'isInt'],
      ['userId', undefined, 'isUuid'],
      ...requiredName(100),
      ...jobStatus,
      ['format', 'rar', 'isIn'],
      ['format', null, 'isIn'],
      ...percentage('progress'),
      ...nonNegativeInts('totalImages', 'exportedImages', 'fileSize'),
      ['downloadUrl', 'export.zip', 'isUrl'],
      ['exportOptions', null, 'isObject'],
    ],
    valueSets: [
      ['status', JOB_STATUSES],
      ['format', EXPORT_FORMATS],
    ],
  },
};

/** A test-name-sized rendering of a value: long strings by their length. */
const shown = (value: unknown): string =>
  typeof value === 'string' && value.length > 24
    ? `a ${value.length}-character string`
    : (JSON.stringify(value) ?? 'undefined');

async function failures(instance: object): Promise<Record<string, string[]>> {
  const errors = await validate(instance);
  return Object.fromEntries(errors.map((e) => [e.property, Object.keys(e.constraints ?? {})]));
}

describe.each(Object.entries(CASES))('%s validation', (_name, entity) => {
  it('passes for a valid instance with every column set', async () => {
    expect(await failures(entity.full())).toEqual({});
  });

  it('passes with only the columns that have no database default', async () => {
    expect(await failures(entity.minimal())).toEqual({});
  });

  if (entity.valueSets.length > 0) {
    it('accepts every value of its value sets', async () => {
      for (const [property, values] of entity.valueSets) {
        for (const value of values) {
          expect(await failures(Object.assign(entity.full(), { [property]: value }))).toEqual({});
        }
      }
    });
  }

  it.each(entity.breaks.map(([p, v, c]) => [p, shown(v), c, v]))(
    'rejects %s = %s on that property only (%s)',
    async (property, _shown, constraint, value) => {
      const result = await failures(Object.assign(entity.full(), { [property]: value }));
      expect(Object.keys(result)).toEqual([property]);
      expect(result[property]).toContain(constraint);
    },
  );
});
