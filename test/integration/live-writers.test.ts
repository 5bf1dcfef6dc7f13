import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { buildLegacyDatabase, profileId } from '../../src/testing/legacy-builder';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { schemaDrift } from '../../src/inspect/schema-drift';
import { migrations } from '../../src/migrations';
import { recordedMigrations } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('writers during the upgrade of a live legacy database', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let writer: Client;

  beforeAll(async () => {
    db = await createTestDatabase('writers');
    await buildLegacyDatabase(db.url, { images: 30_000 });
    dataSource = await db.connect();
    writer = new Client({ connectionString: db.url });
    await writer.connect();
  });
  afterAll(async () => {
    await writer.end();
    await db.drop();
  });

  it('inserts into images and activity_logs from another connection all succeed while migrate runs', async () => {
    let migrating = true;
    const failures: unknown[] = [];
    let inserted = 0;
    const writes = (async () => {
      // At least one round before, during and after: the loop stops when migrate has finished.
      for (let n = 1; migrating || n <= 2; n++) {
        try {
          await writer.query(
            `INSERT INTO images (crawl_job_id, original_url, filename) VALUES ($1, $2, $3)`,
            [1 + (n % 100), `https://images.example.org/live/${n}.jpg`, `live_${n}.jpg`],
          );
          await writer.query(
            `INSERT INTO activity_logs (user_id, action, resource_type) VALUES ($1, 'image.added', 'image')`,
            [profileId(1)],
          );
          inserted += 2;
        } catch (error) {
          failures.push(error);
        }
      }
    })();

    try {
      await runPendingMigrations(dataSource, {}, { baseline: true });
    } finally {
      migrating = false;
      await writes;
    }

    expect(failures).toEqual([]);
    expect(inserted).toBeGreaterThanOrEqual(4);
    const [live] = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM images WHERE filename LIKE 'live_%'`,
    );
    expect(Number(live.n)).toBe(inserted / 2);
    expect(await recordedMigrations(db)).toEqual(migrations.map((m) => new m().name));
    expect(await schemaDrift(dataSource)).toEqual([]);
  });
});
