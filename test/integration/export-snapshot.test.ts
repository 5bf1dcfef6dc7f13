import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import type { ManifestChunk } from '../../src/repositories/copy-out-rows';
import { ImageRepository } from '../../src/repositories/image.repository';
import { makeOwnedCrawlJob } from '../helpers/factories';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * An export counts its rows on a second connection while its manifest streams (the count
 * beside the COPY): both must read the one snapshot the export began with.
 */
describe("an export's count and rows come from one snapshot", () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('export_snapshot');
    await db.migrate();
    // Two connections: the export's, and one for the count, which the test holds for a while.
    ds = new DataSource(dataSourceOptions({ url: db.url, poolSize: 2 }));
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const insertImages = async (client: Client, crawlJobId: number, count: number) =>
    client.query(
      `INSERT INTO images (crawl_job_id, original_url, filename)
       SELECT $1, 'https://e.com/' || n, 'img_' || n || '.jpg' FROM generate_series(1, $2) n`,
      [crawlJobId, count],
    );

  it('rows committed after the export began are in neither its count nor its manifest', async () => {
    const { crawlJob } = await makeOwnedCrawlJob(ds);
    const writer = new Client({ connectionString: db.url });
    await writer.connect();
    try {
      await insertImages(writer, crawlJob.id, 50);
      const images = new ImageRepository(ds);
      const seen = await images.readExport(crawlJob.id, undefined, async (snapshot) => {
        // The pool's other connection is taken: the count waits for it, and runs only after
        // 20 more rows are committed.
        const held = ds.createQueryRunner();
        await held.connect();
        const counting = snapshot.count();
        await insertImages(writer, crawlJob.id, 20);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await held.release();
        let rows = 0;
        for await (const { rowEnds } of snapshot.csvChunks() as AsyncIterable<ManifestChunk>) {
          rows += rowEnds.length;
        }
        // The plain byte stream of the same snapshot: the same rows, one line each.
        const bytes: Buffer[] = [];
        for await (const chunk of snapshot.jsonl()) bytes.push(chunk as Buffer);
        const lines = Buffer.concat(bytes).toString('utf8').split('\n').length - 1;
        return { counted: await counting, rows, lines };
      });
      expect(seen).toEqual({ counted: 50, rows: 50, lines: 50 });
      const [{ now }] = await db.query<{ now: number }>(
        'SELECT count(*)::int AS now FROM images WHERE crawl_job_id = $1',
        [crawlJob.id],
      );
      expect(now).toBe(70);
    } finally {
      await writer.end();
    }
  });
});
