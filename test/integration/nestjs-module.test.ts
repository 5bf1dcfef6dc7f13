import 'reflect-metadata';
import {
  Controller,
  Get,
  Global,
  Module,
  Param,
  UseFilters,
  type INestApplication,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { DomainErrorFilter, JobWorkerHost, PixCrawlerDataModule } from '../../src/nestjs';
import { ProjectService } from '../../src/services/project.service';
import { TestFactory } from '../../src/testing/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** The caller of every request here. */
let userId = '';

@Controller('plain')
class PlainController {
  constructor(private readonly projects: ProjectService) {}

  @Get(':id')
  get(@Param('id') id: string) {
    return this.projects.get(userId, Number(id));
  }
}

@Controller('filtered')
@UseFilters(DomainErrorFilter)
class FilteredController {
  constructor(private readonly projects: ProjectService) {}

  @Get(':id')
  get(@Param('id') id: string) {
    return this.projects.get(userId, Number(id));
  }
}

/** A module of the app's own that does not import PixCrawlerDataModule. */
@Module({ controllers: [PlainController, FilteredController] })
class FeatureModule {}

describe('PixCrawlerDataModule', () => {
  let db: TestDatabase;
  let outputDir: string;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('nestjs_module');
    await db.migrate();
    outputDir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-nestjs-'));
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await db?.drop();
    rmSync(outputDir, { recursive: true, force: true });
  });

  it('forRoot builds the services on the DataSource its token names, global when asked, with no filter unless asked', async () => {
    const dataSource = await db.connect(); // closed by db.drop()
    const factory = new TestFactory(dataSource.manager);
    const owner = await factory.profile();
    const project = await factory.project({ userId: owner.id, name: 'Reached by token' });
    userId = owner.id;

    @Global()
    @Module({
      providers: [{ provide: 'REPORTING_DATA_SOURCE', useValue: dataSource }],
      exports: ['REPORTING_DATA_SOURCE'],
    })
    class DatabaseModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        DatabaseModule,
        PixCrawlerDataModule.forRoot({
          dataSource: 'REPORTING_DATA_SOURCE',
          exportJobs: { outputDir },
          isGlobal: true,
        }),
        FeatureModule,
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const http = request(app.getHttpServer());

    const found = await http.get(`/plain/${project.id}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ id: project.id, name: 'Reached by token' });
    // Without registerFilter a domain error is Nest's to answer: 500.
    expect((await http.get('/plain/2147483647')).status).toBe(500);
    // @UseFilters(DomainErrorFilter) applies the shared table where the app wants it.
    const missing = await http.get('/filtered/2147483647');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: 'not_found', message: 'project 2147483647 not found' });
    expect(app.get(JobWorkerHost).worker).toBeUndefined();
  });

  it('stops the worker before TypeOrmModule closes the DataSource, calling the events the options give', async () => {
    const seen: string[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot(dataSourceOptions({ url: db.url })),
        PixCrawlerDataModule.forRootAsync({
          useFactory: async () => ({
            exportJobs: { outputDir },
            worker: {
              pollIntervalMs: 3_600_000,
              events: {
                // Runs during app.close(), long after `dataSource` below is set.
                stopping: (reason) =>
                  seen.push(`stopping (${reason}), DataSource open: ${dataSource.isInitialized}`),
              },
            },
          }),
          registerFilter: true,
        }),
      ],
    }).compile();
    const dataSource = moduleRef.get(DataSource);
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const worker = app.get(JobWorkerHost).worker;
    expect(worker?.kinds).toEqual(['validation', 'export']);

    await app.close();
    app = undefined;
    await worker!.done;
    expect(seen).toEqual(['stopping (application shutdown), DataSource open: true']);
    expect(dataSource.isInitialized).toBe(false);
  });
});
