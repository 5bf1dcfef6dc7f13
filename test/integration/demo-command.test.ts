import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildProgram } from '../../src/cli/main';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('the demo command', () => {
  let db: TestDatabase;
  let dir: string;
  const savedUrl = process.env.DATABASE_URL;

  beforeAll(async () => {
    db = await createTestDatabase('demo');
    dir = await mkdtemp(path.join(tmpdir(), 'pixcrawler-demo-'));
  });
  afterAll(async () => {
    if (savedUrl === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedUrl;
    process.exitCode = undefined;
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates an empty database and runs crawl, validation and a tar export to completion', async () => {
    process.env.DATABASE_URL = db.url;
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await buildProgram().parseAsync([
        'node',
        'pixcrawler-db',
        'demo',
        '--images',
        '250',
        '--format',
        'tar',
        '--dir',
        dir,
      ]);
    } finally {
      log.mockRestore();
    }
    expect(process.exitCode).toBe(0);
    const [crawl] = await db.query<{ status: string; total_images: number; valid_images: number }>(
      'SELECT status, total_images, valid_images FROM crawl_jobs',
    );
    expect(crawl).toMatchObject({ status: 'completed', total_images: 250 });
    const [exported] = await db.query<{ id: number; status: string; exported_images: number }>(
      'SELECT id, status, exported_images FROM export_jobs',
    );
    expect(exported).toMatchObject({ status: 'completed', exported_images: crawl.valid_images });
    expect(existsSync(path.join(dir, 'exports', `export-${exported.id}.tar`))).toBe(true);
  });
});
