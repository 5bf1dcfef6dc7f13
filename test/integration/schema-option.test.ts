import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { verifySchema } from '../../src/inspect/schema-verifier';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { ProjectService, ProfileService } from '../../src/services';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * One notion of "the schema": with `schema: 'tenant_a'` the migrations, TypeORM's migrations
 * table, the services' SQL and verify all work in tenant_a, and public stays empty.
 */
let db: TestDatabase;
let dataSource: DataSource;

beforeAll(async () => {
  db = await createTestDatabase('schema_option');
  await db.query('CREATE SCHEMA tenant_a');
  dataSource = new DataSource(dataSourceOptions({ url: db.url, schema: 'tenant_a' }));
  await dataSource.initialize();
});
afterAll(async () => {
  await dataSource.destroy();
  await db.drop();
});

const tablesIn = async (schema: string) =>
  (
    await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`,
      [schema],
    )
  ).map((row) => row.table_name);

describe('a DataSource with a schema option', () => {
  it('migrates into that schema only, and verify finds it clean there', async () => {
    await runPendingMigrations(dataSource);
    expect(await tablesIn('tenant_a')).toEqual([
      'activity_logs',
      'crawl_jobs',
      'export_jobs',
      'images',
      'migrations',
      'profiles',
      'projects',
      'validation_jobs',
    ]);
    expect(await tablesIn('public')).toEqual([]);
    const report = await verifySchema(dataSource);
    expect(report.schema).toBe('tenant_a');
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
  });

  it("runs the services' SQL in that schema", async () => {
    const profile = await new ProfileService(dataSource).create({
      id: '00000000-0000-4000-8000-000000000001',
      email: 'tenant@example.com',
    });
    await new ProjectService(dataSource).create(profile.id, { name: 'Birds' });
    const [row] = await db.query<{ count: string }>('SELECT count(*) FROM tenant_a.projects');
    expect(row.count).toBe('1');
  });

  it('refuses a schema name it cannot put on the search path safely', () => {
    expect(() => dataSourceOptions({ schema: 'x"; DROP TABLE y; --' })).toThrow(
      /schema must be a lower-case PostgreSQL identifier/,
    );
  });
});
