import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ClassConstructor } from 'class-transformer';
import type { DataSource } from 'typeorm';
import {
  ChunkProgressDto,
  CreateCrawlJobDto,
  CreateExportJobDto,
  CreateProfileDto,
  CreateProjectDto,
  CreateValidationJobDto,
  IdPageDto,
  KeysetPageDto,
  ListCrawlJobsDto,
  MAX_INPUT_DEPTH,
  MAX_INPUT_VALUES,
  PageDto,
  parseInput,
  ValidationRulesDto,
} from '../../src/dto';
import { DomainError, ValidationError } from '../../src/errors';
import { ActivityService } from '../../src/services/activity.service';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { ExportJobService } from '../../src/services/export-job.service';
import { ProfileService } from '../../src/services/profile.service';
import { ProjectService } from '../../src/services/project.service';
import { ValidationJobService } from '../../src/services/validation-job.service';
import { LocalDirectoryStorage } from '../../src/storage/image-storage';
import { TestFactory } from '../../src/testing/factories';
import { generateImages } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { PIXCRAWLER_TABLES } from '../helpers/sql-rows';

/**
 * Property: whatever JSON reaches a DTO or a service entry point, the outcome is success or a
 * domain error (never a driver error: an HTTP 500 in an app), and a refused call writes no row.
 */
/** Per service entry point; each run also counts the rows of seven tables, twice. */
const RUNS = 120;
const TABLES = PIXCRAWLER_TABLES;

/** Values chosen to hurt: edges of int4 and of JavaScript numbers, NUL bytes, long text. */
const hostileScalar = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    2_147_483_647,
    2_147_483_648,
    -2_147_483_649,
    1e300,
    -1e300,
    Number.MAX_SAFE_INTEGER,
    2 ** 53 + 2,
    0.5,
    '',
    '\u0000',
    'a\u0000b',
    'x'.repeat(300),
    '=cmd',
    '../../etc/passwd',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'https://example.com/a.jpg',
    'zip',
    'running',
    'admin',
    true,
    null,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ unit: 'binary', maxLength: 120 }),
);

/**
 * `levels` objects (or arrays, alternating) around a hostile leaf, built in a loop: 5,000 levels
 * once overflowed class-transformer's stack. From one level to far past MAX_INPUT_DEPTH.
 */
const nestedJson = (minLevels: number) =>
  fc
    .record({
      levels: fc.integer({ min: minLevels, max: 6000 }),
      key: fc.constantFrom('a', 'rules', 'options', 'minWidth', '0'),
      arrays: fc.boolean(),
      leaf: hostileScalar,
    })
    .map(({ levels, key, arrays, leaf }) => {
      let value: unknown = leaf;
      for (let i = 0; i < levels; i += 1) value = arrays && i % 2 ? [value] : { [key]: value };
      return value;
    });

/** Wide objects and long arrays around MAX_INPUT_VALUES (a value per entry). */
const giantJson = (minSize: number) =>
  fc
    .record({
      size: fc.integer({ min: minSize, max: 2 * MAX_INPUT_VALUES }),
      array: fc.boolean(),
      leaf: hostileScalar,
    })
    .map(({ size, array, leaf }) =>
      array
        ? new Array<unknown>(size).fill(leaf)
        : Object.fromEntries(Array.from({ length: size }, (_, i) => [`k${i}`, leaf])),
    );

const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostileScalar },
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.array(hostileScalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: nestedJson(1) },
  { weight: 1, arbitrary: giantJson(MAX_INPUT_VALUES - 10) },
  // Own `__proto__` and `constructor` keys, as JSON.parse makes them (a nested `constructor`
  // once made class-transformer throw a TypeError).
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('__proto__', 'constructor'), fc.jsonValue({ maxDepth: 2 }))
      .map(([key, value]) => JSON.parse(`{${JSON.stringify(key)}:${JSON.stringify(value)}}`)),
  },
);

/** Objects that carry the DTO's own keys (so validation is reached), with hostile values. */
function nearValid(keys: string[], nested: Record<string, string[]> = {}): fc.Arbitrary<unknown> {
  const field = (key: string) =>
    nested[key] ? fc.oneof(nearValid(nested[key]), hostileJson) : hostileJson;
  const record = fc.record(Object.fromEntries(keys.map((key) => [key, field(key)])), {
    requiredKeys: [],
  });
  return fc.oneof(
    { weight: 4, arbitrary: record },
    {
      weight: 1,
      arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), hostileJson, { maxKeys: 4 }),
    },
    { weight: 1, arbitrary: hostileJson },
  );
}

const KEYS = {
  profile: ['id', 'email', 'fullName', 'role'],
  project: ['name', 'description'],
  crawlJob: ['projectId', 'name', 'keywords', 'maxImages'],
  chunk: ['startedChunks', 'completedChunks', 'failedChunks', 'progress'],
  rules: ['minWidth', 'minHeight', 'maxFileSize', 'allowedFormats'],
  validation: ['crawlJobId', 'name', 'rules'],
  exportJob: ['crawlJobId', 'name', 'format', 'options'],
  exportOptions: ['onlyValid', 'expiresInHours'],
  page: ['limit', 'offset'],
  idPage: ['limit', 'beforeId'],
  keyset: ['limit', 'cursor'],
  listCrawl: ['limit', 'offset', 'status'],
  image: ['originalUrl', 'filename', 'storageUrl', 'width', 'height', 'fileSize', 'format'],
};

describe('DTOs under arbitrary JSON', () => {
  const dtos: Array<[ClassConstructor<object>, fc.Arbitrary<unknown>]> = [
    [CreateProfileDto, nearValid(KEYS.profile)],
    [CreateProjectDto, nearValid(KEYS.project)],
    [CreateCrawlJobDto, nearValid(KEYS.crawlJob)],
    [ChunkProgressDto, nearValid(KEYS.chunk)],
    [ValidationRulesDto, nearValid(KEYS.rules)],
    [CreateValidationJobDto, nearValid(KEYS.validation, { rules: KEYS.rules })],
    [CreateExportJobDto, nearValid(KEYS.exportJob, { options: KEYS.exportOptions })],
    [PageDto, nearValid(KEYS.page)],
    [IdPageDto, nearValid(KEYS.idPage)],
    [KeysetPageDto, nearValid(KEYS.keyset)],
    [ListCrawlJobsDto, nearValid(KEYS.listCrawl)],
  ];

  it.each(dtos)('%p parses or throws a ValidationError naming fields', (dto, input) => {
    fc.assert(
      fc.property(input, (value) => {
        try {
          parseInput(dto, value);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
          expect(Object.keys(error.fields).length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  const keysOf: Array<[ClassConstructor<object>, string[]]> = [
    [CreateProfileDto, KEYS.profile],
    [CreateProjectDto, KEYS.project],
    [CreateCrawlJobDto, KEYS.crawlJob],
    [ChunkProgressDto, KEYS.chunk],
    [ValidationRulesDto, KEYS.rules],
    [CreateValidationJobDto, KEYS.validation],
    [CreateExportJobDto, KEYS.exportJob],
    [PageDto, KEYS.page],
    [IdPageDto, KEYS.idPage],
    [KeysetPageDto, KEYS.keyset],
    [ListCrawlJobsDto, KEYS.listCrawl],
  ];

  it.each(keysOf)(
    '%p refuses a field nested too deep or a giant payload with a ValidationError naming it',
    (dto, keys) => {
      const pastLimits = fc.oneof(nestedJson(MAX_INPUT_DEPTH), giantJson(MAX_INPUT_VALUES + 1));
      fc.assert(
        fc.property(fc.constantFrom(...keys), pastLimits, (key, value) => {
          let refused: unknown;
          try {
            parseInput(dto, { [key]: value });
          } catch (error) {
            refused = error;
          }
          if (!(refused instanceof ValidationError)) throw refused ?? new Error('accepted');
          const [path, ...others] = Object.keys(refused.fields);
          expect(others).toEqual([]);
          expect(path.startsWith(key)).toBe(true);
          expect(refused.fields[path][0]).toMatch(/levels deep|values/);
        }),
        { numRuns: 100 },
      );
    },
  );
});

describe('service entry points under arbitrary JSON', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let outputDir: string;
  let ids: {
    user: string;
    admin: string;
    project: number;
    crawlJob: number;
    validation: number;
    exportJob: number;
  };
  let services: {
    profiles: ProfileService;
    projects: ProjectService;
    crawlJobs: CrawlJobService;
    validations: ValidationJobService;
    exports: ExportJobService;
    activity: ActivityService;
  };

  // On the pooled DataSource: a connection of its own per call (db.query) made this test spend
  // most of its time starting server processes, two per run of thousands.
  const rowCounts = async () =>
    (
      await ds.query<{ counts: string }[]>(
        `SELECT concat_ws(',', ${TABLES.map((t) => `(SELECT count(*) FROM ${t})`).join(', ')}) AS counts`,
      )
    )[0].counts;

  beforeAll(async () => {
    db = await createTestDatabase('property-domain-errors');
    await db.migrate();
    ds = await db.connect();
    outputDir = await mkdtemp(path.join(tmpdir(), 'pixcrawler-property-'));
    const factory = new TestFactory(ds.manager);
    const user = await factory.profile();
    const admin = await factory.profile({ role: 'admin' });
    const project = await factory.project({ userId: user.id });
    const crawlJob = await factory.crawlJob({ projectId: project.id });
    services = {
      profiles: new ProfileService(ds),
      projects: new ProjectService(ds),
      crawlJobs: new CrawlJobService(ds),
      validations: new ValidationJobService(ds),
      exports: new ExportJobService(ds, {
        outputDir,
        storage: new LocalDirectoryStorage(outputDir),
      }),
      activity: new ActivityService(ds),
    };
    await services.crawlJobs.start(user.id, crawlJob.id);
    await services.crawlJobs.ingestImages(crawlJob.id, generateImages(20));
    const validation = await services.validations.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'v',
      rules: {},
    });
    const exportJob = await services.exports.request(user.id, {
      crawlJobId: crawlJob.id,
      name: 'e',
      format: 'jsonl',
    });
    ids = {
      user: user.id,
      admin: admin.id,
      project: project.id,
      crawlJob: crawlJob.id,
      validation: validation.id,
      exportJob: exportJob.id,
    };
  });
  afterAll(async () => {
    await db.drop();
    await rm(outputDir, { recursive: true, force: true });
  });

  const userIds = () =>
    fc.oneof(fc.constant(ids.user), fc.constant(ids.admin), fc.uuid(), hostileScalar);
  const idsOf = (real: () => number) =>
    fc.oneof(fc.constant(real()), fc.integer(), hostileScalar, fc.constant(0));

  /** Each entry point: a name and an arbitrary call of it. */
  const entryPoints = (): Array<[string, fc.Arbitrary<() => Promise<unknown>>]> => {
    const { profiles, projects, crawlJobs, validations, exports, activity } = services;
    const uid = userIds();
    const project = idsOf(() => ids.project);
    const crawl = idsOf(() => ids.crawlJob);
    const validation = idsOf(() => ids.validation);
    const exportId = idsOf(() => ids.exportJob);
    const call = <A extends unknown[]>(
      arbs: { [K in keyof A]: fc.Arbitrary<A[K]> },
      f: (...a: A) => Promise<unknown>,
    ) =>
      fc.tuple(...(arbs as fc.Arbitrary<unknown>[])).map((args) =>
        // fast-check prints a counterexample with toString: show the arguments.
        Object.assign(() => f(...(args as A)), { toString: () => JSON.stringify(args) }),
      );
    return [
      ['ProfileService.create', call([nearValid(KEYS.profile)], (i) => profiles.create(i))],
      ['ProfileService.get', call([uid], (u) => profiles.get(u as string))],
      [
        'ProfileService.setRole',
        call([uid, uid, hostileJson], (a, p, r) => profiles.setRole(a as string, p as string, r)),
      ],
      [
        'ProjectService.create',
        call([uid, nearValid(KEYS.project)], (u, i) => projects.create(u as string, i)),
      ],
      [
        'ProjectService.get',
        call([uid, project], (u, p) => projects.get(u as string, p as number)),
      ],
      [
        'ProjectService.list',
        call([uid, nearValid(KEYS.page)], (u, q) => projects.list(u as string, q)),
      ],
      [
        'ProjectService.archive',
        call([uid, project], (u, p) => projects.archive(u as string, p as number)),
      ],
      [
        'CrawlJobService.create',
        call([uid, nearValid(KEYS.crawlJob)], (u, i) => crawlJobs.create(u as string, i)),
      ],
      [
        'CrawlJobService.get',
        call([uid, crawl], (u, c) => crawlJobs.get(u as string, c as number)),
      ],
      [
        'CrawlJobService.listForProject',
        call([uid, project, nearValid(KEYS.listCrawl)], (u, p, q) =>
          crawlJobs.listForProject(u as string, p as number, q),
        ),
      ],
      [
        'CrawlJobService.cancel',
        call([uid, crawl], (u, c) => crawlJobs.cancel(u as string, c as number)),
      ],
      [
        'CrawlJobService.ingestImages',
        call(
          [crawl, fc.oneof(fc.array(nearValid(KEYS.image), { maxLength: 3 }), hostileJson)],
          (c, i) => crawlJobs.ingestImages(c as number, i),
        ),
      ],
      [
        'CrawlJobService.recordChunkProgress',
        call([crawl, nearValid(KEYS.chunk)], (c, i) =>
          crawlJobs.recordChunkProgress(c as number, i),
        ),
      ],
      [
        'CrawlJobService.recoverStale',
        call([hostileScalar], (s) => crawlJobs.recoverStale(s as number)),
      ],
      [
        'ValidationJobService.request',
        call([uid, nearValid(KEYS.validation, { rules: KEYS.rules })], (u, i) =>
          validations.request(u as string, i),
        ),
      ],
      [
        'ValidationJobService.get',
        call([uid, validation], (u, v) => validations.get(u as string, v as number)),
      ],
      [
        'ValidationJobService.retry',
        call([uid, validation], (u, v) => validations.retry(u as string, v as number)),
      ],
      [
        'ValidationJobService.recoverStale',
        call([hostileScalar], (s) => validations.recoverStale(s as number)),
      ],
      [
        'ExportJobService.request',
        call([uid, nearValid(KEYS.exportJob, { options: KEYS.exportOptions })], (u, i) =>
          exports.request(u as string, i),
        ),
      ],
      [
        'ExportJobService.get',
        call([uid, exportId], (u, e) => exports.get(u as string, e as number)),
      ],
      [
        'ExportJobService.listMine',
        call([uid, nearValid(KEYS.idPage)], (u, q) => exports.listMine(u as string, q)),
      ],
      [
        'ExportJobService.listForCrawlJob',
        call([uid, crawl], (u, c) => exports.listForCrawlJob(u as string, c as number)),
      ],
      [
        'ExportJobService.download',
        call([uid, exportId], (u, e) => exports.download(u as string, e as number)),
      ],
      [
        'ExportJobService.cancel',
        call([uid, exportId], (u, e) => exports.cancel(u as string, e as number)),
      ],
      [
        'ExportJobService.recoverStale',
        call([hostileScalar], (s) => exports.recoverStale(s as number)),
      ],
      ['ActivityService.recent', call([nearValid(KEYS.keyset)], (q) => activity.recent(q))],
      [
        'ActivityService.recentForUser',
        call([uid, nearValid(KEYS.keyset)], (u, q) => activity.recentForUser(u as string, q)),
      ],
    ];
  };

  it('every entry point ends in success or a domain error, and a refused call writes no row', async () => {
    for (const [name, calls] of entryPoints()) {
      await fc.assert(
        fc.asyncProperty(calls, async (run) => {
          const before = await rowCounts();
          let outcome: unknown;
          try {
            await run();
            return;
          } catch (error) {
            outcome = error;
          }
          if (!(outcome instanceof DomainError)) {
            throw new Error(`${name} threw ${String((outcome as Error)?.stack ?? outcome)}`);
          }
          expect(await rowCounts()).toBe(before);
        }),
        { numRuns: RUNS },
      );
    }
  }, 300_000);
});
