import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getRepositoryToken } from '@nestjs/typeorm';
import { DataSource, type Repository } from 'typeorm';
import { ExportJobService, Project } from '@pixcrawler/data';
import { JobWorkerHost } from '@pixcrawler/data/nestjs';
import { httpContract } from '../http-contract';
import { workerContract, TEST_WORKER } from '../worker-contract';
import { AppModule } from './app.module';

describe('NestJS example', () => {
  const app = httpContract<INestApplication>('nestjs_example', async (db) => {
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.register({ databaseUrl: db.url })],
    }).compile();
    const nest = moduleRef.createNestApplication({ logger: false });
    await nest.init();
    return {
      server: nest.getHttpServer(),
      dataSource: nest.get(DataSource),
      close: () => nest.close(),
      extra: nest,
    };
  });

  describe('module wiring', () => {
    it("TypeOrmModule.forFeature(entities) provides repositories on the package's DataSource", async () => {
      const { extra: nest, factory, alice } = app();
      const projects = nest.get<Repository<Project>>(getRepositoryToken(Project));
      expect(projects.manager.connection).toBe(nest.get(DataSource));
      const saved = await factory.project({ userId: alice.id, name: 'Seen by the repository' });
      expect(await projects.findOneByOrFail({ id: saved.id })).toMatchObject({
        name: 'Seen by the repository',
        userId: alice.id,
      });
    });

    it("PixCrawlerDataModule's services are providers built from the TypeOrmModule DataSource", () => {
      const { extra: nest } = app();
      expect(nest.get(ExportJobService)).toBeInstanceOf(ExportJobService);
      expect(nest.get(DataSource).options).toMatchObject({
        migrationsTransactionMode: 'each',
        synchronize: false,
      });
    });

    it('runs no job worker when the config asks for none', () => {
      const { extra: nest } = app();
      expect(nest.get(JobWorkerHost).worker).toBeUndefined();
    });
  });

  workerContract('nestjs_worker', async (db) => {
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.register({ databaseUrl: db.url, worker: TEST_WORKER })],
    }).compile();
    const nest = moduleRef.createNestApplication({ logger: false });
    await nest.init();
    return {
      server: nest.getHttpServer(),
      dataSource: nest.get(DataSource),
      close: () => nest.close(),
      extra: nest,
    };
  });
});
