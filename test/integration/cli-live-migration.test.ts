import { LEGACY_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import { migrations } from '../../src/migrations';
import { runCli } from '../helpers/cli';
import { recordedMigrations, rowCounts } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('the live-migration commands, as an operator runs them', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('cli_live');
  });
  afterAll(() => db.drop());

  it('seed-legacy builds the legacy tables into an empty database', async () => {
    const { code, output } = await runCli(['seed-legacy', '--images', '2000'], db.url);
    expect(code).toBe(0);
    expect(output).toContain('Loaded');
    expect(await rowCounts(db, LEGACY_TABLE_NAMES)).toEqual({
      profiles: 1,
      projects: 2,
      crawl_jobs: 10,
      images: 2000,
      activity_logs: 1000,
    });
  });

  it('seed-legacy refuses a database that already has tables, unless --drop-existing', async () => {
    const refused = await runCli(['seed-legacy', '--images', '500'], db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('--drop-existing');
    expect((await rowCounts(db, ['images'])).images).toBe(2000);

    const rebuilt = await runCli(['seed-legacy', '--images', '500', '--drop-existing'], db.url);
    expect(rebuilt.code).toBe(0);
    expect((await rowCounts(db, ['images'])).images).toBe(500);
  });

  it('migrate stops on a legacy database and explains --baseline; migrate --baseline upgrades it', async () => {
    const refused = await runCli(['migrate'], db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('migrate --baseline');
    expect(refused.output).toContain('Nothing was changed');
    expect(await recordedMigrations(db)).toEqual([]);

    const adopted = await runCli(['migrate', '--baseline'], db.url);
    expect(adopted.code).toBe(0);
    expect(adopted.output).toContain('recorded LegacySchema1731542400000 as applied');
    expect(await recordedMigrations(db)).toEqual(migrations.map((m) => new m().name));
  });
});
