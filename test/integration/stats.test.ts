import { DataSource } from 'typeorm';
import { readDatabaseStats } from '../../src/inspect/database-stats';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { runCli } from '../helpers/cli';
import { createProfileTree } from '../helpers/sql-rows';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

let db: TestDatabase;
let dataSource: DataSource;

beforeAll(async () => {
  db = await createTestDatabase('stats');
  dataSource = await db.connect();
  await runPendingMigrations(dataSource);
  await createProfileTree(dataSource);
  // A real failed concurrent build leaves an INVALID index behind: two images share a filename.
  await db.query(`INSERT INTO images (crawl_job_id, original_url, filename)
                  SELECT crawl_job_id, original_url, filename FROM images`);
  await db.query('CREATE UNIQUE INDEX CONCURRENTLY ix_images_filename ON images (filename)').then(
    () => Promise.reject(new Error('the unique build should have failed on duplicates')),
    (error: { code?: string }) => expect(error.code).toBe('23505'),
  );
});
afterAll(() => db.drop());

describe('stats', () => {
  it('reports every table with its row estimate and the sizes of table, indexes and total', async () => {
    await db.query('ANALYZE');
    const stats = await readDatabaseStats(dataSource);

    expect(stats.tables.map((t) => t.table).sort()).toEqual([
      'activity_logs',
      'crawl_jobs',
      'export_jobs',
      'images',
      'migrations',
      'profiles',
      'projects',
      'validation_jobs',
    ]);
    const profiles = stats.tables.find((t) => t.table === 'profiles');
    expect(profiles?.rowEstimate).toBe(1);
    expect(stats.tables.find((t) => t.table === 'images')?.rowEstimate).toBe(2);
    for (const table of stats.tables) {
      expect(table.totalBytes).toBe(table.tableBytes + table.indexBytes);
      expect(table.indexBytes).toBeGreaterThan(0);
      expect(table.totalSize).toMatch(/^\d+ (bytes|kB|MB|GB|TB)$/);
    }
  });

  it('reports every index with its scans and size, and flags unused and INVALID ones', async () => {
    const stats = await readDatabaseStats(dataSource);

    const names = stats.indexes.filter((i) => i.table !== 'migrations').map((i) => i.index);
    expect(names).toEqual(
      expect.arrayContaining(['pk_images', 'ix_image_crawl_job_id', 'ix_profiles_email']),
    );
    // 7 primary keys, the 14 indexes of SPEC.md, and the invalid one this test added.
    expect(names).toHaveLength(7 + 14 + 1);
    const invalid = stats.indexes.find((i) => i.index === 'ix_images_filename');
    expect(invalid).toMatchObject({ valid: false, unique: true, table: 'images' });
    for (const index of stats.indexes) {
      expect(index.unused).toBe(index.scans === 0);
      if (index.valid) expect(index.bytes).toBeGreaterThan(0);
    }
    expect(stats.indexes.find((i) => i.index === 'pk_images')).toMatchObject({
      primary: true,
      unique: true,
    });
  });

  it('prints both tables aligned from the command line and exits 0', async () => {
    const { code, output } = await runCli(['stats'], db.url);
    expect(code).toBe(0);
    expect(output).toMatch(/^table +rows \(est\.\) +table +indexes +total$/m);
    expect(output).toMatch(
      /^images +ix_images_filename +0 +0 +0 +\S+ \S+ +unique, INVALID, unused$/m,
    );
    expect(output).toContain('1 INVALID index(es): ix_images_filename.');
  });
});
