import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { NotFoundError, ProjectService } from '@pixcrawler/data';
import { createTestDatabase, TestFactory, type TestDatabase } from '@pixcrawler/data/testing';
import { appDataSourceOptions } from '../src/database';
import { Note } from '../src/note.entity';

describe('notes on projects', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let factory: TestFactory;

  beforeAll(async () => {
    // A fresh database with the package's migrations and the app's.
    db = await createTestDatabase({
      prefix: 'quickstart',
      dataSourceOptions: appDataSourceOptions,
    });
    await db.migrate();
    dataSource = await db.connect();
    factory = new TestFactory(dataSource.manager);
  });
  afterAll(() => db.drop());

  it('are deleted with their project', async () => {
    const project = await factory.project();
    const notes = dataSource.getRepository(Note);
    await notes.save(notes.create({ projectId: project.id, body: 'look for owls' }));
    expect(await notes.countBy({ projectId: project.id })).toBe(1);

    await db.query('DELETE FROM projects WHERE id = $1', [project.id]);
    expect(await notes.countBy({ projectId: project.id })).toBe(0);
  });

  it("cannot reach another user's project: ProjectService answers it as missing", async () => {
    const project = await factory.project();
    const projects = new ProjectService(dataSource);
    await expect(projects.get(randomUUID(), project.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(projects.get(project.userId, project.id)).resolves.toMatchObject({
      id: project.id,
    });
  });
});
