import { DataSource } from 'typeorm';
import {
  migrationStates,
  revertLastMigration,
  runPendingMigrations,
} from '../../src/migrator/migrator';
import { schemaDrift } from '../../src/inspect/schema-drift';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** Everything in the public schema that a migration could create, as comparable text. */
async function schemaSnapshot(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ item: string }>(`
    SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type,
                  is_nullable, column_default) AS item
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    ORDER BY 1`);
  return rows.map((row) => row.item);
}

describe('the migration chain', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('migrations');
    dataSource = await db.connect();
  });
  afterAll(() => db.drop());

  it('applies every migration to an empty database and leaves no drift from the entities', async () => {
    const applied = await runPendingMigrations(dataSource);
    expect(applied).toEqual(dataSource.migrations.map((m) => m.name));
    expect(await schemaDrift(dataSource)).toEqual([]);
  });

  it('finds nothing pending on a second run', async () => {
    expect(await runPendingMigrations(dataSource)).toEqual([]);
    expect((await migrationStates(dataSource)).every((m) => m.applied)).toBe(true);
  });

  it('still takes the deprecated call shape with a URL before the events', async () => {
    const finished: string[] = [];
    const events = { finished: (name: string) => finished.push(name) };
    const last = await revertLastMigration(dataSource, db.url, events);
    expect(last).toBe(dataSource.migrations.at(-1)?.name);
    expect(await runPendingMigrations(dataSource, db.url, events)).toEqual([last]);
    expect(finished).toEqual([last, last]);
  });

  it('reverts every migration to an empty schema, and migrating again gives the same schema', async () => {
    const first = await schemaSnapshot(db);
    const reverted: string[] = [];
    for (let name; (name = await revertLastMigration(dataSource));) reverted.push(name);
    expect(reverted).toEqual(dataSource.migrations.map((m) => m.name).reverse());

    const tables = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name <> 'migrations'`,
    );
    expect(tables).toEqual([]);

    await runPendingMigrations(dataSource);
    expect(await schemaSnapshot(db)).toEqual(first);
  });
});
