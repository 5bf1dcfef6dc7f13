import {
  Column,
  DataSource,
  Entity,
  PrimaryGeneratedColumn,
  type MigrationInterface,
  type QueryRunner,
} from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { CrawlJob, entities, ExportJob, Image, Profile, Project } from '../../src/entities';
import { migrations } from '../../src/migrations';
import { CrawlJobService } from '../../src/services/crawl-job.service';
import { createTestDatabase as createKitDatabase, TestFactory } from '../../src/testing';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** An application's own table and migration, run beside the package's (one stream). */
@Entity('app_notes')
class AppNote {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column('text')
  body!: string;
}

class AddAppNotes1790000000000 implements MigrationInterface {
  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'CREATE TABLE "app_notes" ("id" SERIAL NOT NULL, "body" text NOT NULL, CONSTRAINT "PK_app_notes" PRIMARY KEY ("id"))',
    );
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE "app_notes"');
  }
}

const appOptions = (url: string) => ({
  ...dataSourceOptions({ url }),
  entities: [...entities, AppNote],
  migrations: [...migrations, AddAppNotes1790000000000],
});

describe('the testing kit for applications', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let factory: TestFactory;

  beforeAll(async () => {
    db = await createTestDatabase('testing_kit');
    await db.migrate();
    dataSource = await db.connect();
    factory = new TestFactory(dataSource.manager);
  });
  afterAll(() => db.drop());

  it('gives every test file its own migrated database', async () => {
    const [{ current }] = await db.query<{ current: string }>(
      'SELECT current_database() AS current',
    );
    expect(current).toBe(db.name);
    const applied = await db.query<{ name: string }>('SELECT name FROM migrations ORDER BY id');
    expect(applied.map((m) => m.name)).toEqual(dataSource.migrations.map((m) => m.name));
  });

  it('creates the missing parents of a row, down to the profile', async () => {
    const image = await factory.image();
    const crawlJob = await dataSource.manager.findOneByOrFail(CrawlJob, { id: image.crawlJobId });
    const project = await dataSource.manager.findOneByOrFail(Project, { id: crawlJob.projectId });
    expect(await dataSource.manager.countBy(Profile, { id: project.userId })).toBe(1);
    expect(await dataSource.manager.countBy(Image, { crawlJobId: crawlJob.id })).toBe(1);
  });

  it('uses the parents and fields a test gives, with defaults from the database', async () => {
    const owner = await factory.profile({ email: 'owner@example.com' });
    const project = await factory.project({ userId: owner.id, name: 'Birds' });
    const reloaded = await dataSource.manager.findOneByOrFail(Project, { id: project.id });
    expect(reloaded).toMatchObject({ userId: owner.id, name: 'Birds', status: 'active' });
  });

  it('makes an export belong to the owner of its crawl job unless told otherwise', async () => {
    const crawlJob = await factory.crawlJob();
    const exportJob = await factory.exportJob({ crawlJobId: crawlJob.id });
    const project = await dataSource.manager.findOneByOrFail(Project, { id: crawlJob.projectId });
    const reloaded = await dataSource.manager.findOneByOrFail(ExportJob, { id: exportJob.id });
    expect(reloaded).toMatchObject({ userId: project.userId, format: 'zip', fileSize: null });
  });

  it('keeps activity logs without a user when asked for one with user_id null', async () => {
    const log = await factory.activityLog({ userId: null });
    expect(log.userId).toBeNull();
  });

  it("counts the images it makes in their crawl job's totals, as ingest does, so limits hold", async () => {
    const crawlJob = await factory.crawlJob({ status: 'running', maxImages: 3 });
    await factory.image({ crawlJobId: crawlJob.id });
    await factory.image({ crawlJobId: crawlJob.id });
    const counted = await dataSource.manager.findOneByOrFail(CrawlJob, { id: crawlJob.id });
    expect(counted).toMatchObject({ totalImages: 2, downloadedImages: 2 });
    // One more fits under max_images 3; the second of the batch is trimmed.
    const result = await new CrawlJobService(dataSource).ingestImages(crawlJob.id, [
      { originalUrl: 'https://images.example.com/a.jpg', filename: 'a.jpg' },
      { originalUrl: 'https://images.example.com/b.jpg', filename: 'b.jpg' },
    ]);
    expect(result).toMatchObject({ inserted: 1, trimmed: 1, totalImages: 3 });
  });

  it('names databases with a prefix of the application, and refuses one that is not a name', async () => {
    const own = await createKitDatabase({ prefix: 'myapp', label: 'orders' });
    try {
      expect(own.name).toMatch(/^myapp_orders_[0-9a-f]{8}$/);
    } finally {
      await own.drop();
    }
    await expect(createKitDatabase({ prefix: 'My-App' })).rejects.toThrow(
      /prefix must be lower-case letters, digits and _/,
    );
  });

  it("with the app's dataSourceOptions, migrates the app's tables beside the package's and connects knowing its entities", async () => {
    const app = await createKitDatabase({ label: 'app_options', dataSourceOptions: appOptions });
    try {
      await app.migrate();
      const applied = await app.query<{ name: string }>('SELECT name FROM migrations ORDER BY id');
      expect(applied.map((m) => m.name)).toEqual([
        ...migrations.map((m) => new m().name!),
        'AddAppNotes1790000000000',
      ]);
      const appData = await app.connect();
      const note = await appData.getRepository(AppNote).save({ body: 'seen by the app' });
      expect(await app.query('SELECT id, body FROM app_notes')).toEqual([
        { id: note.id, body: 'seen by the app' },
      ]);
      // The package's entities and the factories work on the same DataSource.
      const project = await new TestFactory(appData.manager).project({ name: 'Beside' });
      expect(await appData.manager.countBy(Project, { id: project.id })).toBe(1);
    } finally {
      await app.drop();
    }
  });

  it('refuses dataSourceOptions that connect to another database, and creates none', async () => {
    const elsewhere = (url: string) => ({ ...appOptions(url), url: db.url });
    await expect(
      createKitDatabase({ label: 'elsewhere', dataSourceOptions: elsewhere }),
    ).rejects.toThrow(/returned options for another database; use the url it is given/);
    const made = await db.query(
      "SELECT datname FROM pg_database WHERE datname LIKE 'pixcrawler\\_elsewhere\\_%'",
    );
    expect(made).toEqual([]);
  });
});
